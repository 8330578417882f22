/**
 * The built-in actions that run in the worker-thread pool (`runIn: "thread"`): the default
 * module a pool's threads load (see thread-pool.ts). A module of thread actions exports them,
 * made with `defineAction` and with `runIn: "thread"`; a thread picks them up by name.
 * Add a CPU-bound built-in action here as well as in the catalog.
 */
export { analyse } from "./analyse.js";
