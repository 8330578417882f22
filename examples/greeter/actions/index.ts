/**
 * This project's actions. Ricochet loads every action this module exports (ACTIONS=./actions/index.ts).
 */
export { pageTitle } from "./page-title.ts";
export { wordStats } from "./word-stats.ts";
