// The body of a watch request: newline-delimited JSON, one {type, object} per line, streamed as the
// server sends it. A line may arrive in pieces, and one chunk may hold several lines.
import { isRecord } from '../json.js';

export interface WatchEvent {
  /** ADDED, MODIFIED, DELETED, BOOKMARK or ERROR. */
  type: string;
  object: unknown;
}

/** Decodes a watch stream; throws on a line that is not a watch event (the watch is then broken). */
export async function* watchEvents(body: AsyncIterable<Buffer | string>): AsyncGenerator<WatchEvent> {
  let pending = '';
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) yield decodeLine(line);
    }
  }
  const rest = pending.trim();
  if (rest) yield decodeLine(rest);
}

function decodeLine(line: string): WatchEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`watch stream: not JSON: ${line.slice(0, 200)}`);
  }
  if (!isRecord(value) || typeof value['type'] !== 'string') throw new Error(`watch stream: not a watch event: ${line.slice(0, 200)}`);
  return { type: value['type'], object: value['object'] };
}
