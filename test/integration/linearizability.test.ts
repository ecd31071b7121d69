// The chaos suite's linearizability checker (tools/linearizability: Porcupine 1.3.0, Go) on small
// hand-made histories, through the binary scripts/provision-linearizability.sh builds and caches:
// a checker that accepted everything (or nothing) fails here.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLinearizability, linearizabilityBinary, type LinearizabilityResult } from '../../tools/chaos/linearizability.js';
import type { HistoryOp } from '../../tools/history.js';

const run = promisify(execFile);
let dir = '';

beforeAll(async () => {
  await run('bash', ['scripts/provision-linearizability.sh'], { timeout: 110_000 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-linearizability-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const put = (client: number, key: number, value: number, call: number, ret: number | null, outcome: HistoryOp['outcome'] = 'ok'): HistoryOp => ({ client, kind: 'put', key, value, call, return: ret, outcome, instance: 'cs-0' });
const get = (client: number, key: number, value: number | null, call: number, ret: number): HistoryOp => ({ client, kind: 'get', key, value, call, return: ret, outcome: 'ok', instance: 'cs-0' });

async function check(name: string, ops: HistoryOp[]): Promise<LinearizabilityResult> {
  const file = path.join(dir, `${name}.jsonl`);
  await writeFile(file, ops.map((o) => JSON.stringify(o)).join('\n') + '\n');
  return checkLinearizability(file, path.join(dir, `${name}.html`), { binary: linearizabilityBinary(), timeoutMs: 30_000 });
}

describe('linearizability checker (Porcupine)', () => {
  it('accepts a linearizable history: a get concurrent with a put may see either, an unknown put may have happened', async () => {
    const r = await check('ok', [
      put(0, 1, 5, 0, 10),
      get(1, 1, null, 2, 4), // before the put took effect
      get(1, 1, 5, 8, 9), // concurrent with the put: sees it
      get(2, 1, 5, 11, 12),
      put(0, 2, 6, 20, null, 'unknown'), // a timed-out put …
      get(1, 2, null, 30, 31), // … not yet visible
      get(1, 2, 6, 100, 120), // … then visible: it happened late
      put(0, 3, 7, 40, 50, 'failed'), // a refused put
      get(2, 3, null, 60, 70),
    ]);
    expect(r.verdict, r.detail).toBe('ok');
    expect(r.detail).toMatch(/^OK: 8 operations \(2 puts, 6 gets, 1 puts of unknown outcome\) on 3 keys; 1 failed/);
  });

  it('rejects a stale read: an acknowledged put that a later get does not see', async () => {
    const r = await check('stale', [put(0, 1, 5, 0, 10), get(1, 1, 5, 11, 12), get(2, 1, null, 13, 14)]);
    expect(r.verdict, r.detail).toBe('violated');
    expect(r.detail).toContain('VIOLATED on 1 keys, e.g. [1]');
    expect(r.html && existsSync(r.html)).toBe(true);
  });

  it('rejects a resurrected write (a put that failed for certain, read later) and a value read then lost', async () => {
    const resurrected = await check('resurrected', [put(0, 1, 5, 0, 10, 'failed'), get(1, 1, 5, 20, 21)]);
    expect(resurrected.verdict, resurrected.detail).toBe('violated');
    const flicker = await check('flicker', [put(0, 4, 9, 0, null, 'unknown'), get(1, 4, 9, 5, 6), get(1, 4, null, 7, 8)]);
    expect(flicker.verdict, flicker.detail).toBe('violated');
  });

  it('says unknown, not ok, for a history it cannot read', async () => {
    const file = path.join(dir, 'bad.jsonl');
    await writeFile(file, '{"client":0,"kind":"delete","key":1}\n');
    const r = await checkLinearizability(file, path.join(dir, 'bad.html'), { timeoutMs: 30_000 });
    expect(r.verdict).toBe('unknown');
    expect(r.detail).toContain('neither put nor get');
  });
});
