CREATE TABLE "tenant_counter_changes" (
	"tenant_id" text NOT NULL,
	"queued" integer NOT NULL,
	"running" integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX "tenant_counter_changes_tenant_idx" ON "tenant_counter_changes" USING btree ("tenant_id");