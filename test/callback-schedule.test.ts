import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { DEFAULT_CALLBACK_RETRY_DELAYS, parseRetryDelays, retryDelayFor } from "../src/core/callback-schedule.js";
import { signatureHeaders } from "../src/worker/deliver-callback.js";

const MINUTE = 60_000;

describe("the callback retry schedule", () => {
  it("defaults to exactly 2, 4, 8, 16, 30, 30, 30, 30, 30, 30 minutes: 11 attempts, the last 3 h 30 min after the first", () => {
    const delays = loadConfig({}).callbackRetryDelays;
    expect(delays).toEqual([2, 4, 8, 16, 30, 30, 30, 30, 30, 30].map((m) => m * MINUTE));
    expect(delays.length + 1).toBe(11);
    expect(delays.reduce((a, b) => a + b, 0)).toBe(3.5 * 60 * MINUTE);
    expect(parseRetryDelays(DEFAULT_CALLBACK_RETRY_DELAYS)).toEqual(delays);
  });

  it("gives the wait after each failed attempt, and none after the last", () => {
    const delays = parseRetryDelays("2m,4m,8m");
    expect([1, 2, 3, 4].map((attempt) => retryDelayFor(delays, attempt))).toEqual([2 * MINUTE, 4 * MINUTE, 8 * MINUTE, undefined]);
  });

  it("is configurable at millisecond scale, and refuses nonsense", () => {
    expect(loadConfig({ CALLBACK_RETRY_DELAYS: "20ms, 40ms,80" }).callbackRetryDelays).toEqual([20, 40, 80]);
    expect(() => loadConfig({ CALLBACK_RETRY_DELAYS: "2m,soon" })).toThrow(/CALLBACK_RETRY_DELAYS/);
  });
});

describe("Standard Webhooks signatures", () => {
  it("reproduces the specification's test vector", () => {
    const headers = signatureHeaders(
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      new Date(1614265330 * 1000),
      '{"test": 2432232314}',
      ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    );
    expect(headers).toEqual({
      "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
      "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    });
  });

  it("signs with every active secret during a rotation; either verifies", () => {
    const oldSecret = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
    const newSecret = `whsec_${Buffer.alloc(32, 2).toString("base64")}`;
    const now = new Date();
    const body = JSON.stringify({ hello: "world" });
    const headers = signatureHeaders("msg_1", now, body, [oldSecret, newSecret]);
    expect(headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual({ hello: "world" });
    expect(new Webhook(newSecret).verify(body, headers)).toEqual({ hello: "world" });
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 3).toString("base64")}`).verify(body, headers)).toThrow();
  });
});
