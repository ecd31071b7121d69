// Fencing by term: an agent acts only on coordinator messages whose term is at least the highest it
// knows, and a term it has not seen persisted yet is checked against the state ConfigMap (the
// authority) before it is believed — a peer cannot fence the real coordinator by inventing a term.

/** The highest term an agent knows, and the coordinator recorded for it when known. */
export interface KnownTerm {
  term: number;
  holder: string | null;
}

export type TermVerdict = { verdict: 'accept' } | { verdict: 'refuse'; reason: string } | { verdict: 'verify' };

/** Pure rule for a coordinator message with `term` from pod `from`. */
export function judgeTerm(known: KnownTerm, term: number, from: string): TermVerdict {
  if (term < known.term) return { verdict: 'refuse', reason: `stale term ${term}: term ${known.term} is current` };
  if (term === known.term) {
    // One term, one coordinator: the CAS that created the term named exactly one holder.
    if (known.holder !== null && known.holder !== from) {
      return { verdict: 'refuse', reason: `term ${term} belongs to ${known.holder}, not ${from}` };
    }
    return { verdict: 'accept' };
  }
  return { verdict: 'verify' };
}

/** What the authority (the state ConfigMap) says the current term is. */
export type TermAuthority = (signal: AbortSignal) => Promise<KnownTerm>;

/** The verdict after asking the authority about a term higher than we knew. Pure. */
export function judgeVerified(persisted: KnownTerm, term: number, from: string): TermVerdict {
  if (persisted.term > term) return { verdict: 'refuse', reason: `stale term ${term}: term ${persisted.term} is persisted` };
  if (persisted.term < term) return { verdict: 'refuse', reason: `term ${term} is not persisted (the state holds ${persisted.term}): not a real coordinator` };
  if (persisted.holder !== null && persisted.holder !== from) {
    return { verdict: 'refuse', reason: `term ${term} belongs to ${persisted.holder}, not ${from}` };
  }
  return { verdict: 'accept' };
}

/**
 * The agent's view of the current term. `observe` feeds it from the state ConfigMap; `check`
 * decides a message, asking the authority (once per new term, coalesced) when the message is ahead.
 */
export class TermGuard {
  private known: KnownTerm = { term: 0, holder: null };
  private pending = new Map<number, Promise<KnownTerm>>();

  constructor(
    private readonly authority: TermAuthority | undefined,
    private readonly verifyTimeoutMs = 5_000,
  ) {}

  get current(): KnownTerm {
    return this.known;
  }

  /** Raises the known term (never lowers it). */
  observe(term: number, holder: string | null): void {
    if (term > this.known.term || (term === this.known.term && this.known.holder === null && holder !== null)) {
      this.known = { term, holder };
    }
  }

  async check(term: number, from: string): Promise<TermVerdict> {
    const first = judgeTerm(this.known, term, from);
    if (first.verdict !== 'verify') return first;
    const authority = this.authority;
    if (!authority) {
      // No authority configured (tests, or a deployment that trusts authenticated peers): believe it.
      this.observe(term, from);
      return { verdict: 'accept' };
    }
    let persisted: KnownTerm;
    try {
      persisted = await this.ask(authority, term);
    } catch (err) {
      return { verdict: 'refuse', reason: `cannot confirm term ${term} with the state ConfigMap: ${(err as Error).message}` };
    }
    this.observe(persisted.term, persisted.holder);
    // Re-judge against what we know now: another message may have raised the term meanwhile.
    const again = judgeTerm(this.known, term, from);
    return again.verdict === 'verify' ? judgeVerified(persisted, term, from) : again;
  }

  // One bounded read per new term, shared by every message that carries it.
  private ask(authority: TermAuthority, term: number): Promise<KnownTerm> {
    let p = this.pending.get(term);
    if (!p) {
      p = authority(AbortSignal.timeout(this.verifyTimeoutMs)).finally(() => this.pending.delete(term));
      this.pending.set(term, p);
    }
    return p;
  }
}
