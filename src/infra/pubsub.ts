import type { RedisConnection } from "./redis.js";
import type { Logger } from "pino";
import { cancelChannel, secretRotationChannel, statusChannel, tokenRevocationChannel, type StatusChangeMessage } from "../shared/queues.js";

type Listener = (message: StatusChangeMessage) => void;

/** The status changes one message on the status channel carries: an array, or one object from a version before (a rolling upgrade). */
export function parseStatusMessages(raw: string): StatusChangeMessage[] {
  const parsed = JSON.parse(raw) as StatusChangeMessage | StatusChangeMessage[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/**
 * Status changes, cancellations and token revocations travel over Redis pub/sub so that the
 * process holding a long-poll (running a job, caching a token) hears about what another process
 * did. One subscription per process; listeners are kept locally. Delivery is best-effort: every
 * user of it also has a bound that holds without it (timeouts, cache TTL, the database).
 *
 * Status changes are many (two per request) and go to every process that serves long-polls and
 * event streams: those made in one turn of the event loop (a batch of claims or finishes) travel
 * as one message, a JSON array. Only processes that serve them (`statusEvents`) subscribe.
 */
export function createPubSub(deps: { publisher: RedisConnection; subscriber: RedisConnection; prefix: string; logger: Logger; statusEvents: boolean }) {
  const statusListeners = new Map<string, Set<Listener>>();
  const cancelListeners = new Set<(id: string) => void>();
  const revocationListeners = new Set<(digest: string) => void>();
  const rotationListeners = new Set<(clientId: string) => void>();
  const channels = {
    status: statusChannel(deps.prefix),
    cancel: cancelChannel(deps.prefix),
    revocation: tokenRevocationChannel(deps.prefix),
    rotation: secretRotationChannel(deps.prefix),
  };

  deps.subscriber.on("message", (channel: string, raw: string) => {
    try {
      if (channel === channels.status) {
        for (const message of parseStatusMessages(raw)) {
          for (const listener of statusListeners.get(message.id) ?? []) listener(message);
        }
      } else if (channel === channels.cancel) {
        for (const listener of cancelListeners) listener(raw);
      } else if (channel === channels.revocation) {
        for (const listener of revocationListeners) listener(raw);
      } else if (channel === channels.rotation) {
        for (const listener of rotationListeners) listener(raw);
      }
    } catch (error) {
      deps.logger.warn({ err: error, channel }, "ignored a malformed pub/sub message");
    }
  });

  let outgoing: StatusChangeMessage[] = [];
  let sent: Promise<void> | undefined;
  function sendStatuses(): Promise<void> {
    return (sent ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const batch = outgoing;
      outgoing = [];
      sent = undefined;
      try {
        await deps.publisher.publish(channels.status, JSON.stringify(batch));
      } catch (error) {
        // Waiters re-read the database when they time out, so a lost notice only delays them.
        deps.logger.warn({ err: error, asyncRequestIds: batch.map((m) => m.id) }, "could not publish status changes");
      }
    }));
  }

  return {
    async start(): Promise<void> {
      const always = [channels.cancel, channels.revocation, channels.rotation];
      await deps.subscriber.subscribe(...(deps.statusEvents ? [channels.status, ...always] : always));
    },

    /** Announces a status change, with the others of this turn of the event loop; resolves once sent. */
    publishStatus(message: StatusChangeMessage): Promise<void> {
      outgoing.push(message);
      return sendStatuses();
    },

    async publishCancel(id: string): Promise<void> {
      await deps.publisher.publish(channels.cancel, id);
    },

    async publishTokenRevoked(digest: string): Promise<void> {
      await deps.publisher.publish(channels.revocation, digest).catch((error: unknown) => {
        deps.logger.warn({ err: error }, "could not broadcast a token revocation; caches expire it within TOKEN_CACHE_TTL");
      });
    },

    async publishSecretsRotated(clientId: string): Promise<void> {
      await deps.publisher.publish(channels.rotation, clientId).catch((error: unknown) => {
        deps.logger.warn({ err: error }, "could not broadcast a secret rotation; caches expire it within SIGNING_SECRET_CACHE_TTL");
      });
    },

    onSecretsRotated(listener: (clientId: string) => void): () => void {
      rotationListeners.add(listener);
      return () => rotationListeners.delete(listener);
    },

    onTokenRevoked(listener: (digest: string) => void): () => void {
      revocationListeners.add(listener);
      return () => revocationListeners.delete(listener);
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

export type PubSub = ReturnType<typeof createPubSub>;
