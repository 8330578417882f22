DROP INDEX "async_requests_callback_idx";--> statement-breakpoint
DROP INDEX "async_requests_status_updated_idx";--> statement-breakpoint
DROP INDEX "async_requests_finished_idx";--> statement-breakpoint
CREATE INDEX "async_requests_callback_idx" ON "async_requests" USING btree ("callback_status","callback_updated_at") WHERE "async_requests"."callback_status" IN ('PENDING', 'RETRYING', 'EXHAUSTED');--> statement-breakpoint
CREATE INDEX "async_requests_status_updated_idx" ON "async_requests" USING btree ("status","updated_at") WHERE "async_requests"."status" IN ('QUEUED', 'RUNNING');--> statement-breakpoint
CREATE INDEX "async_requests_finished_idx" ON "async_requests" USING btree ("finished_at") WHERE "async_requests"."finished_at" IS NOT NULL;