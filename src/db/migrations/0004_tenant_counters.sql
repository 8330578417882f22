ALTER TABLE "tenants" ADD COLUMN "queued_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "running_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Existing requests count from the start; afterwards the life-cycle statements keep the counters.
UPDATE "tenants" t SET
  "queued_count" = (SELECT count(*) FROM "async_requests" r WHERE r."tenant_id" = t."id" AND r."status" = 'QUEUED'),
  "running_count" = (SELECT count(*) FROM "async_requests" r WHERE r."tenant_id" = t."id" AND r."status" = 'RUNNING');
