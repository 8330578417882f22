/**
 * What the baseline workers POST: shaped and sized like Ricochet's callback body (the request as
 * GET shows it, plus the result), with `dateFinished` set when the job ran, so the receiver can
 * treat both the same way.
 */
export function callbackBody(id: string): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    asyncRequest: {
      id,
      action: "echo",
      status: "COMPLETED",
      createdBy: "bench",
      dateCreated: now,
      dateStarted: now,
      dateFinished: now,
      progress: 100,
      metadata: null,
      callback: { url: "http://127.0.0.1/hook", status: "PENDING", attempts: 0 },
    },
    echo: { data: "x" },
  });
}
