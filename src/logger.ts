import { pino, type DestinationStream, type Logger } from "pino";

/** Authorization headers and secrets never reach the logs, whatever a caller logs by mistake. */
const REDACT = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "*.authorization",
  "client_secret",
  "*.client_secret",
  "access_token",
  "*.access_token",
  "secret",
  "*.secret",
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: "ricochet" }, redact: { paths: REDACT, censor: "[redacted]" } }, destination);
}
