/**
 * A task run every `intervalMs` (the first run after `firstDelayMs`), never two at once in this
 * process: the next run is scheduled when the previous one has ended. `stop` cancels the next run
 * and waits for the current one. The sweeper and retention run this way (each also takes a Redis
 * lock, so that one worker of the deployment runs it at a time).
 */
export function runPeriodically(task: () => Promise<void>, options: { intervalMs: number; firstDelayMs?: number }) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  return {
    start() {
      const loop = () => {
        running = task().finally(() => {
          if (timer !== undefined) timer = setTimeout(loop, options.intervalMs);
        });
      };
      timer = setTimeout(loop, options.firstDelayMs ?? options.intervalMs);
    },
    async stop() {
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
