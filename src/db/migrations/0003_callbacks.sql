CREATE TABLE "callback_attempts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"request_id" uuid NOT NULL,
	"series" integer NOT NULL,
	"attempt" integer NOT NULL,
	"webhook_id" text NOT NULL,
	"url" text NOT NULL,
	"started_at" timestamp (3) with time zone NOT NULL,
	"duration_ms" integer NOT NULL,
	"status_code" integer,
	"error_class" text,
	"error_message" text,
	"response_body" text,
	"delivered" boolean NOT NULL
);
--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_status" text;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_series" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_last_status_code" integer;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_last_error" text;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_last_attempt_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_next_attempt_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "async_requests" ADD COLUMN "callback_updated_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "callback_attempts" ADD CONSTRAINT "callback_attempts_request_id_async_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."async_requests"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "callback_attempts_request_idx" ON "callback_attempts" USING btree ("request_id","started_at");--> statement-breakpoint
CREATE INDEX "async_requests_callback_idx" ON "async_requests" USING btree ("callback_status","callback_updated_at");