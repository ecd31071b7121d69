// Pure parsing of Tarantool admin-console replies (TARANTOOL.md "Control path"): a reply is a YAML
// document `---\n- value\n- value\n...\n`, one list item per returned value, that ends at `\n...\n`
// at column 0. Replies arrive over a stream in arbitrary chunks, so splitting works on bytes (a
// chunk may end inside a multi-byte UTF-8 character) and only complete replies are parsed.
import { parseDocument } from 'yaml';

const TERMINATOR = Buffer.from('\n...\n');
const START = '---';

export class ReplyParseError extends Error {
  constructor(
    message: string,
    readonly raw: string,
  ) {
    super(message);
    this.name = 'ReplyParseError';
  }
}

/**
 * Accumulates bytes and yields complete replies as text. Each chunk is searched once, together
 * with the last few bytes before it (the terminator may straddle two chunks), so a large reply
 * arriving in many chunks costs linear time.
 */
export class ReplySplitter {
  private pendingChunks: Buffer[] = [];
  private pendingBytes = 0;

  /** Adds a chunk; returns every reply it completes (usually zero or one), oldest first. */
  push(chunk: Buffer): string[] {
    const replies: string[] = [];
    let data = chunk;
    while (data.length > 0) {
      const tail = this.tail();
      const probe = tail.length > 0 ? Buffer.concat([tail, data]) : data;
      const at = probe.indexOf(TERMINATOR);
      if (at < 0) {
        this.append(data);
        break;
      }
      // The tail is shorter than the terminator, so the terminator always ends inside `data`.
      const cut = at + TERMINATOR.length - tail.length;
      this.append(data.subarray(0, cut));
      replies.push(Buffer.concat(this.pendingChunks, this.pendingBytes).toString('utf8'));
      this.pendingChunks = [];
      this.pendingBytes = 0;
      data = data.subarray(cut);
    }
    return replies;
  }

  /** Bytes received that do not yet form a complete reply. */
  get pending(): number {
    return this.pendingBytes;
  }

  private append(data: Buffer): void {
    if (data.length === 0) return;
    this.pendingChunks.push(data);
    this.pendingBytes += data.length;
  }

  /** The last TERMINATOR.length - 1 pending bytes (fewer if less is pending). */
  private tail(): Buffer {
    const want = Math.min(TERMINATOR.length - 1, this.pendingBytes);
    if (want === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let got = 0;
    for (let i = this.pendingChunks.length - 1; i >= 0 && got < want; i--) {
      const c = this.pendingChunks[i] as Buffer;
      const take = Math.min(c.length, want - got);
      parts.unshift(c.subarray(c.length - take));
      got += take;
    }
    return Buffer.concat(parts, got);
  }
}

/** A YAML value as the console produces it; `Uint8Array` is what `!!binary` decodes to. */
export type ReplyValue = null | boolean | number | bigint | string | Uint8Array | ReplyValue[] | { [key: string]: ReplyValue };

/**
 * Parses one complete reply into the list of returned values (`[]` for no value or a single nil,
 * which the console prints identically). Integers beyond 2^53 stay exact as bigint; all others are
 * numbers. Throws ReplyParseError on anything that is not a well-formed console reply.
 */
export function parseReply(raw: string): ReplyValue[] {
  if (!raw.startsWith(START)) throw new ReplyParseError('console reply does not start with "---"', raw);
  const doc = parseDocument(raw, { customTags: ['binary'], intAsBigInt: true, uniqueKeys: false });
  if (doc.errors.length > 0) {
    throw new ReplyParseError(`console reply is not valid YAML: ${doc.errors[0]?.message ?? 'unknown error'}`, raw);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 0 });
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new ReplyParseError('console reply is not a YAML list', raw);
  return value.map(normalise);
}

/** bigint → number where that loses nothing; recursively. */
function normalise(v: unknown): ReplyValue {
  if (typeof v === 'bigint') return v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v;
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Map) {
    // YAML maps with non-string keys (e.g. `{1: 17}`) come back as Map only with mapAsMap; keep the fallback.
    const out: { [key: string]: ReplyValue } = {};
    for (const [k, item] of v) out[String(k)] = normalise(item);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const out: { [key: string]: ReplyValue } = {};
    for (const [k, item] of Object.entries(v)) out[k] = normalise(item);
    return out;
  }
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  return String(v);
}

/** `- error: <msg>` replies: the console's own way of reporting a failed line (not our envelope). */
export function consoleErrorOf(values: readonly ReplyValue[]): string | null {
  if (values.length !== 1) return null;
  const only = values[0];
  if (only === null || typeof only !== 'object' || Array.isArray(only) || only instanceof Uint8Array) return null;
  const keys = Object.keys(only);
  const msg = only['error'];
  return keys.length === 1 && typeof msg === 'string' ? msg : null;
}
