// Replayed command ids: a coordinator may resend a command whose ack was lost. The handler runs once
// per id; a replay while it runs is ignored (the first run acks), a replay after it gets the same ack.
import type { Ack } from '../wire/mesh-protocol.js';

export type ReplayState = { state: 'new' } | { state: 'running' } | { state: 'done'; ack: Ack };

export class ReplayFilter {
  private readonly seen = new Map<string, Ack | null>(); // null = still running

  constructor(private readonly capacity = 4096) {}

  /** Looks `id` up and, when new, marks it running. */
  admit(id: string): ReplayState {
    if (this.seen.has(id)) {
      const ack = this.seen.get(id);
      return ack ? { state: 'done', ack } : { state: 'running' };
    }
    this.seen.set(id, null);
    // Oldest first out: Map iterates in insertion order.
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value as string);
    return { state: 'new' };
  }

  /** Forgets `id` so a resend runs (after a refusal that may be transient). */
  forget(id: string): void {
    this.seen.delete(id);
  }

  complete(id: string, ack: Ack): void {
    if (this.seen.has(id)) this.seen.set(id, ack);
  }
}
