// A small map whose entries expire after a fixed time and whose size is bounded (the oldest entry
// goes first). For answers worth a few seconds: an API server's verdict on a token, say.

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!(ttlMs > 0) || !(maxEntries >= 1)) throw new Error(`TtlCache: ttlMs (${ttlMs}) and maxEntries (${maxEntries}) must be positive`);
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key); // a refreshed key moves to the young end
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, until: this.now() + this.ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
