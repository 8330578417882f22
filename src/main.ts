import { runServiceOrExit } from "./cli/service.js";

/** `npm start` / `npm run api` / `npm run worker`: the service in the mode named by argv. */
runServiceOrExit(process.argv[2] ?? "start");
