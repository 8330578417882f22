import type { TenantRow } from "../db/schema.js";

/** A tenant's limits: RUNNING requests at once, QUEUED requests at most. */
export type Limits = { maxConcurrent: number; maxQueued: number };

/**
 * The limits that apply to a tenant: its own override, else the configured default. The
 * life-cycle statements apply the same rule in SQL (`coalesce(max_queued, default)`), with the
 * defaults handed in from here.
 */
export function effectiveLimits(tenant: Pick<TenantRow, "maxConcurrent" | "maxQueued">, defaults: Limits): Limits {
  return {
    maxConcurrent: tenant.maxConcurrent ?? defaults.maxConcurrent,
    maxQueued: tenant.maxQueued ?? defaults.maxQueued,
  };
}
