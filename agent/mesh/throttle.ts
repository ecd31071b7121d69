// Rejections and drops are logged, but a port scanner or a broken peer must not flood the log: at
// most one line per key per interval, carrying how many were suppressed since the last one.
export class LogThrottle {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 5_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Returns the suppressed count to log with, or null when this occurrence should not be logged. */
  admit(key: string): number | null {
    const now = this.clock();
    const entry = this.last.get(key);
    if (entry && now - entry.atMs < this.intervalMs) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(key, { atMs: now, suppressed: 0 });
    if (this.last.size > 1000) this.last.delete(this.last.keys().next().value as string);
    return suppressed;
  }
}
