// A FIFO mutex whose waits can be abandoned through an AbortSignal: the console runs one request
// per connection, and a caller that times out while queued must leave the queue, not hold a slot.
export class FifoLock {
  private held = false;
  private waiters: Array<{ grant: () => void }> = [];

  async acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (!this.held) {
      this.held = true;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant(); // the slot passes straight to the next waiter
    else this.held = false;
  }

  get queued(): number {
    return this.waiters.length;
  }
}
