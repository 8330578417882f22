import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { cancelChannel, statusChannel, type StatusChangeMessage } from "../shared/queues.js";

type Listener = (message: StatusChangeMessage) => void;

/**
 * Status changes and cancellations travel over Redis pub/sub so that the process holding a
 * long-poll (or running a job) hears about what another process did. One subscription per
 * process; listeners are kept locally by request id.
 */
export function createStatusEvents(deps: { publisher: Redis; subscriber: Redis; prefix: string; logger: Logger }) {
  const statusListeners = new Map<string, Set<Listener>>();
  const cancelListeners = new Set<(id: string) => void>();
  const channels = { status: statusChannel(deps.prefix), cancel: cancelChannel(deps.prefix) };

  deps.subscriber.on("message", (channel: string, raw: string) => {
    try {
      if (channel === channels.status) {
        const message = JSON.parse(raw) as StatusChangeMessage;
        for (const listener of statusListeners.get(message.id) ?? []) listener(message);
      } else if (channel === channels.cancel) {
        for (const listener of cancelListeners) listener(raw);
      }
    } catch (error) {
      deps.logger.warn({ err: error, channel }, "ignored a malformed pub/sub message");
    }
  });

  return {
    async start(): Promise<void> {
      await deps.subscriber.subscribe(channels.status, channels.cancel);
    },

    async publishStatus(message: StatusChangeMessage): Promise<void> {
      try {
        await deps.publisher.publish(channels.status, JSON.stringify(message));
      } catch (error) {
        // Waiters re-read the database when they time out, so a lost notice only delays them.
        deps.logger.warn({ err: error, requestId: message.id }, "could not publish a status change");
      }
    },

    async publishCancel(id: string): Promise<void> {
      await deps.publisher.publish(channels.cancel, id);
    },

    onStatus(id: string, listener: Listener): () => void {
      let set = statusListeners.get(id);
      if (!set) statusListeners.set(id, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) statusListeners.delete(id);
      };
    },

    onCancel(listener: (id: string) => void): () => void {
      cancelListeners.add(listener);
      return () => cancelListeners.delete(listener);
    },

    /** Resolves at the next status change of `id`, after `timeoutMs`, or when `signal` aborts. */
    nextChange(id: string, timeoutMs: number, signal?: AbortSignal): { promise: Promise<void>; cancel(): void } {
      let cancel = () => {};
      const promise = new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        const unsubscribe = this.onStatus(id, done);
        signal?.addEventListener("abort", done, { once: true });
        function done() {
          clearTimeout(timer);
          unsubscribe();
          signal?.removeEventListener("abort", done);
          resolve();
        }
        cancel = done;
      });
      return { promise, cancel };
    },
  };
}

export type StatusEvents = ReturnType<typeof createStatusEvents>;
