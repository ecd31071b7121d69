// Reads the end of Tarantool's log so a TarantoolGoneError can say why the process died (fatal
// box.cfg errors are only written there). Best effort: a missing or unreadable log yields undefined.
import { open } from 'node:fs/promises';

export async function readLogTail(path: string, maxLines = 20, maxBytes = 8192): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const length = Math.min(size, maxBytes);
    if (length === 0) return undefined;
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n');
    if (length < size) lines.shift(); // the first line is probably cut
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const tail = lines.slice(-maxLines).join('\n');
    return tail === '' ? undefined : tail;
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
