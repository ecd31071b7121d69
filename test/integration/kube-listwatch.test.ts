// The list/watch loop against a scripted fake API server: the cases a real one produces only on
// its own schedule (410 Gone after compaction, a watch that ends, a server that errors).
import type { ServerResponse } from 'node:http';
import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerWatcher } from '../../agent/kube/peers.js';
import { namespaced, type Resources } from '../../common/kube/resources.js';
import { sleep } from '../../common/time.js';
import { answerJson, fakeApiServer, type FakeHandler } from '../support/fake-apiserver.js';

const silent = pino({ level: 'silent' });

const pod = (name: string, rv: string, extra: Partial<V1Pod> = {}): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'ns', resourceVersion: rv, uid: `uid-${name}`, labels: { 'shoal.dev/cluster': 'demo' } },
  ...extra,
});

// Registered before the stops: vitest runs afterEach hooks in reverse, so watchers stop first.
const { start } = fakeApiServer();
const stops: AbortController[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s.abort();
});
const fakeApi = async (handler: FakeHandler): Promise<Resources> => namespaced(await start(handler), 'ns');

const json = (res: ServerResponse, body: unknown): void => answerJson(res, body);

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

describe('list/watch loop (scripted API server)', () => {
  it('re-lists on 410 Gone, reporting what vanished meanwhile, then watches from the new resourceVersion', async () => {
    const lists: string[] = [];
    const watches: string[] = [];
    const kc = await fakeApi((req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') {
        lists.push(url.searchParams.get('labelSelector') ?? '');
        const items = lists.length === 1 ? [pod('a', '5')] : [pod('b', '12')];
        return json(res, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: lists.length === 1 ? '10' : '12' }, items });
      }
      watches.push(url.searchParams.get('resourceVersion') ?? '');
      res.setHeader('content-type', 'application/json');
      if (watches.length === 1) {
        res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } })}\n`);
        return;
      }
      res.write(`${JSON.stringify({ type: 'ADDED', object: pod('c', '13', { status: { podIP: '127.0.1.3', phase: 'Running' } }) })}\n`);
      // keep the watch open until the client goes away
    });
    const watcher = new PeerWatcher(kc, 'demo', { logger: silent, backoff: { initialMs: 20, maxMs: 100 } });
    const changes: string[] = [];
    watcher.onChange((c) => changes.push(c.type === 'synced' ? 'synced' : `${c.type}:${c.name}`));
    const stop = new AbortController();
    stops.push(stop);
    const done = watcher.run(stop.signal);
    await until(() => watcher.current.has('c'), 5_000, 'pod c via the second watch');
    expect([...watcher.current.keys()].sort()).toEqual(['b', 'c']);
    expect(lists).toEqual(['shoal.dev/cluster=demo', 'shoal.dev/cluster=demo']);
    expect(watches).toEqual(['10', '12']);
    expect(changes).toEqual(['upsert:a', 'synced', 'delete:a', 'upsert:b', 'synced', 'upsert:c']);
    expect(watcher.current.get('c')).toMatchObject({ ip: '127.0.1.3', phase: 'Running' });
    stop.abort();
    await done;
  });

  it('re-watches from the last resourceVersion when a watch ends normally, without re-listing', async () => {
    let lists = 0;
    const watches: string[] = [];
    const kc = await fakeApi((req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') {
        lists++;
        return json(res, { kind: 'PodList', metadata: { resourceVersion: '1' }, items: [] });
      }
      watches.push(url.searchParams.get('resourceVersion') ?? '');
      const n = watches.length;
      res.setHeader('content-type', 'application/json');
      // Each watch delivers one pod (and a bookmark) and ends, as the server does at timeoutSeconds.
      res.write(`${JSON.stringify({ type: 'ADDED', object: pod(`p${n}`, String(n * 10)) })}\n`);
      res.end(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: String(n * 10 + 5) } } })}\n`);
    });
    const watcher = new PeerWatcher(kc, 'demo', { logger: silent, backoff: { initialMs: 20, maxMs: 100 } });
    const stop = new AbortController();
    stops.push(stop);
    const done = watcher.run(stop.signal);
    // The third watch's request reaching the server is not its event reaching the watcher: wait for both.
    await until(() => watches.length >= 3 && watcher.current.has('p3'), 5_000, 'three watches, their pods seen');
    stop.abort();
    await done;
    expect(lists).toBe(1);
    expect(watches.slice(0, 3)).toEqual(['1', '15', '25']);
    expect([...watcher.current.keys()].slice(0, 3)).toEqual(['p1', 'p2', 'p3']);
  });

  it('backs off and retries while the list fails, then syncs', async () => {
    let lists = 0;
    const kc = await fakeApi((req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') {
        lists++;
        if (lists < 3) {
          res.statusCode = 503;
          return json(res, { kind: 'Status', code: 503, reason: 'ServiceUnavailable', message: 'etcd down' });
        }
        return json(res, { kind: 'PodList', metadata: { resourceVersion: '1' }, items: [pod('a', '1')] });
      }
      res.setHeader('content-type', 'application/json');
      res.write('');
    });
    const watcher = new PeerWatcher(kc, 'demo', { logger: silent, backoff: { initialMs: 20, maxMs: 100 } });
    const stop = new AbortController();
    stops.push(stop);
    const done = watcher.run(stop.signal);
    await watcher.waitForSync(stop.signal, 5_000);
    expect(lists).toBe(3);
    expect(watcher.current.has('a')).toBe(true);
    stop.abort();
    await done;
  });

  it('waitForSync is bounded', async () => {
    const kc = await fakeApi((_req, res) => {
      res.statusCode = 500;
      res.end('{}');
    });
    const watcher = new PeerWatcher(kc, 'demo', { logger: silent, backoff: { initialMs: 20, maxMs: 100 } });
    const stop = new AbortController();
    stops.push(stop);
    const done = watcher.run(stop.signal);
    await expect(watcher.waitForSync(stop.signal, 200)).rejects.toThrow('no complete list');
    stop.abort();
    await done;
  });
});
