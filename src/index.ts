/**
 * Ricochet's public API, for teams that write their own actions or embed the service:
 *
 *   import { defineAction, z } from "ricochet";
 *
 * `z` is the zod Ricochet validates with: define schemas with it so they are the same zod.
 */
export { z } from "zod";
export { ActionError, defineAction, RetryableError, sleep } from "./core/actions/types.js";
export type { ActionDefinition, ActionHelpers, ActionPolicy } from "./core/actions/types.js";
export { CatalogError } from "./core/actions/catalog.js";
export { createRicochet } from "./embed.js";
export type { Ricochet, RicochetOptions } from "./embed.js";
