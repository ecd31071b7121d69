// GET /prestop acts only while the pod is terminating: the pure verdict over its evidence, and the
// adapter that waits a bounded time for the pod watch before it reads the pod.
import { describe, expect, it } from 'vitest';
import { NOT_TERMINATING, prestopVerdict, type PrestopVerdict, type TerminationEvidence } from '../../agent/member/prestop-gate.js';
import { readPod, terminationVerdict } from '../../agent/member/termination.js';
import { KubeClient } from '../../common/kube/client.js';
import { namespaced } from '../../common/kube/resources.js';
import { answerJson, fakeApiServer } from '../support/fake-apiserver.js';

const base: TerminationEvidence = { sigterm: false, watched: null, selfUid: 'uid-1' };
const running = { uid: 'uid-1', deleting: false };
const deleting = { uid: 'uid-1', deleting: true };

describe('prestopVerdict', () => {
  const table: Array<[string, Partial<TerminationEvidence>, PrestopVerdict['kind'], number | null, RegExp]> = [
    ['SIGTERM received', { sigterm: true, watched: running, read: { found: true, ...running } }, 'act', null, /SIGTERM/],
    ['the watch shows the deletionTimestamp', { watched: deleting }, 'act', null, /pod watch shows/],
    ['the watch shows it running: read to be sure', { watched: running }, 'confirm', null, /read it/],
    ['the watch does not show it: read', {}, 'confirm', null, /read it/],
    ['the watch shows a successor being deleted: not us, read', { watched: { uid: 'uid-2', deleting: true } }, 'confirm', null, /read it/],
    ['the read shows the deletionTimestamp', { watched: running, read: { found: true, ...deleting } }, 'act', null, /API server shows/],
    ['the read shows it running', { watched: running, read: { found: true, ...running } }, 'refuse', 409, /not terminating/],
    ['the pod is gone from the API server', { read: { found: false } }, 'act', null, /no longer in the API server/],
    ['a successor has the name', { read: { found: true, uid: 'uid-2', deleting: false } }, 'act', null, /another UID/],
    ['the read failed', { read: { error: 'connect ECONNREFUSED' } }, 'refuse', 503, /cannot tell.*ECONNREFUSED.*nothing was moved/],
  ];
  it.each(table)('%s', (_what, evidence, kind, status, reason) => {
    const v = prestopVerdict({ ...base, ...evidence });
    expect(v.kind).toBe(kind);
    expect(v.kind === 'refuse' ? v.status : null).toBe(status);
    expect(v.reason).toMatch(reason);
    expect(v.reason).not.toContain('\n');
  });

  it('without a known UID, any pod of its name is this pod', () => {
    expect(prestopVerdict({ ...base, selfUid: null, read: { found: true, uid: 'x', deleting: false } })).toEqual({ kind: 'refuse', status: 409, reason: NOT_TERMINATING });
  });
});

describe('terminationVerdict', () => {
  const never = (): boolean => false;

  it('waits for the watch to show the deletion, without reading', async () => {
    let watched: { uid: string; deleting: boolean } | null = running;
    let reads = 0;
    setTimeout(() => (watched = deleting), 100);
    const v = await terminationVerdict(
      { selfUid: 'uid-1', watched: () => watched, read: async () => (reads++, { found: true, ...running }), watchGraceMs: 2_000, pollMs: 10 },
      never,
      new AbortController().signal,
    );
    expect(v.kind).toBe('act');
    expect(reads).toBe(0);
  });

  it('reads the pod once the grace passed, and refuses a running one', async () => {
    let reads = 0;
    const t0 = Date.now();
    const v = await terminationVerdict(
      { selfUid: 'uid-1', watched: () => running, read: async () => (reads++, { found: true, ...running }), watchGraceMs: 150, pollMs: 10 },
      never,
      new AbortController().signal,
    );
    expect(v).toEqual({ kind: 'refuse', status: 409, reason: NOT_TERMINATING });
    expect(reads).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('ends at once when its signal aborts', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('gone')), 20);
    await expect(terminationVerdict({ selfUid: null, watched: () => null, read: async () => ({ found: false }), watchGraceMs: 10_000 }, never, ac.signal)).rejects.toThrow('gone');
  });
});

describe('readPod', () => {
  const { start } = fakeApiServer();

  it('lists the pod by name (the Role has list, not get) and reads its deletionTimestamp', async () => {
    const seen: string[] = [];
    const client = await start((req, res, url) => {
      seen.push(`${req.method} ${url.pathname}?${url.searchParams.toString()}`);
      answerJson(res, { items: [{ metadata: { name: 's-0', uid: 'uid-1', deletionTimestamp: '2024-01-01T00:00:00Z' } }] }, 200);
    });
    expect(await readPod(namespaced(client, 'ns'), 's-0', 1_000, new AbortController().signal)).toEqual({ found: true, uid: 'uid-1', deleting: true });
    expect(seen).toEqual(['GET /api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Ds-0']);
  });

  it('says when the pod is not there, and turns a failure into a reading', async () => {
    const client = await start((_req, res) => answerJson(res, { items: [] }, 200));
    expect(await readPod(namespaced(client, 'ns'), 's-0', 1_000, new AbortController().signal)).toEqual({ found: false });
    const down = new KubeClient({ server: 'http://127.0.0.1:1' });
    const r = await readPod(namespaced(down, 'ns'), 's-0', 1_000, new AbortController().signal);
    down.close();
    expect(r).toMatchObject({ error: expect.stringContaining('find Pod ns/s-0') });
  });
});
