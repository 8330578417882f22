CREATE INDEX "async_requests_unfinished_updated_idx" ON "async_requests" USING btree ("status","updated_at","id") WHERE "async_requests"."status" IN ('QUEUED', 'RUNNING');--> statement-breakpoint
DROP INDEX "async_requests_status_updated_idx";
