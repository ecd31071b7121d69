// The Kubernetes layer's transport, bounded calls, watch decoding and reflector, against a local
// HTTP fake of the API server.
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from '../../common/kube/client.js';
import { KubeApiError, isAlreadyExists, isConflict, isNotFound } from '../../common/kube/errors.js';
import { ListWatch } from '../../common/kube/reflector.js';
import { MERGE_PATCH, clusterRoles, namespaced, resourcePath, resourceFor, KINDS, kindOf, microTime, nodes } from '../../common/kube/resources.js';
import { watchEvents } from '../../common/kube/watch.js';
import { sleep } from '../../common/time.js';
import { answerJson, fakeApiServer } from '../support/fake-apiserver.js';

const json = (res: ServerResponse, code: number, body: unknown): void => answerJson(res, body, code);

const { start: fake } = fakeApiServer();
const clients: KubeClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe('KubeClient requests', () => {
  it('sends method, path, query, bearer token and a typed patch body; returns the parsed answer', async () => {
    const seen: string[] = [];
    const client = await fake((req, res, url, body) => {
      seen.push(`${req.method} ${url.pathname}${url.search} ${req.headers.authorization} ${req.headers['content-type'] ?? '-'} ${body}`);
      json(res, 200, { metadata: { name: 'a' } });
    }, 'tok');
    const kube = namespaced(client, 'ns 1');
    expect(await kube.configMaps.patch('a', { data: { x: '1' } }, MERGE_PATCH)).toEqual({ metadata: { name: 'a' } });
    await kube.pods.list({ labelSelector: 'app=x,tier in (a)' });
    await kube.pods.patch('p', { status: {} }, MERGE_PATCH, { subresource: 'status' });
    await kube.serviceAccounts.createSubresource('default', 'token', { spec: { audiences: [] } });
    await nodes(client).patch('n', { status: {} }, MERGE_PATCH, { subresource: 'status' });
    await resourceFor(client, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'r', namespace: 'x' } }).get('r');
    expect(seen).toEqual([
      'PATCH /api/v1/namespaces/ns%201/configmaps/a Bearer tok application/merge-patch+json {"data":{"x":"1"}}',
      'GET /api/v1/namespaces/ns%201/pods?labelSelector=app%3Dx%2Ctier+in+%28a%29 Bearer tok - ',
      'PATCH /api/v1/namespaces/ns%201/pods/p/status Bearer tok application/merge-patch+json {"status":{}}',
      'POST /api/v1/namespaces/ns%201/serviceaccounts/default/token Bearer tok application/json {"spec":{"audiences":[]}}',
      'PATCH /api/v1/nodes/n/status Bearer tok application/merge-patch+json {"status":{}}',
      'GET /apis/rbac.authorization.k8s.io/v1/namespaces/x/roles/r Bearer tok - ',
    ]);
    expect(kindOf('v1', 'PersistentVolume')).toBe(KINDS.PersistentVolume);
    expect(kindOf('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding')).toBe(KINDS.ClusterRoleBinding);
    expect(kindOf('apps/v1', 'Deployment')).toBeUndefined();
    expect(() => resourceFor(client, { apiVersion: 'apps/v1', kind: 'Deployment' })).toThrow(/no resource for apps\/v1 Deployment/);
    expect(resourcePath(KINDS.Lease, 'd', 'l')).toBe('/apis/coordination.k8s.io/v1/namespaces/d/leases/l');
    expect(resourcePath(KINDS.Namespace, 'ignored', 'n')).toBe('/api/v1/namespaces/n');
  });

  it('createOrReplace creates, or replaces an existing object at its live resourceVersion', async () => {
    const seen: string[] = [];
    const client = await fake((req, res, url, body) => {
      seen.push(`${req.method} ${url.pathname} ${body}`);
      if (req.method === 'POST') json(res, 409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
      else if (req.method === 'GET') json(res, 200, { metadata: { name: 'r', resourceVersion: '7' } });
      else json(res, 200, JSON.parse(body) as unknown);
    });
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' }, rules: [] };
    expect(await clusterRoles(client).createOrReplace(role)).toEqual({ ...role, metadata: { name: 'r', resourceVersion: '7' } });
    expect(seen.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'POST /apis/rbac.authorization.k8s.io/v1/clusterroles',
      'GET /apis/rbac.authorization.k8s.io/v1/clusterroles/r',
      'PUT /apis/rbac.authorization.k8s.io/v1/clusterroles/r',
    ]);
  });

  it('turns Status answers into KubeApiError with code, reason and the words of the call', async () => {
    const answers = [
      [404, { kind: 'Status', code: 404, reason: 'NotFound', message: 'configmaps "x" not found' }],
      [409, { kind: 'Status', code: 409, reason: 'AlreadyExists', message: 'exists' }],
      [409, { kind: 'Status', code: 409, reason: 'Conflict', message: 'stale' }],
      [500, {}],
    ] as const;
    let i = 0;
    const client = await fake((_req, res) => {
      const [code, body] = answers[i++] ?? [500, {}];
      json(res, code, body);
    });
    const cms = namespaced(client, 'd').configMaps;
    const notFound = await cms.get('x').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(KubeApiError);
    expect(String((notFound as Error).message)).toBe('read ConfigMap d/x: HTTP 404 NotFound: configmaps "x" not found');
    expect(isNotFound(notFound)).toBe(true);
    const exists = await cms.create({ metadata: { name: 'x' } }).catch((e: unknown) => e);
    expect([isAlreadyExists(exists), isConflict(exists)]).toEqual([true, false]);
    const conflict = await cms.replace('x', { metadata: { name: 'x' } }).catch((e: unknown) => e);
    expect([isAlreadyExists(conflict), isConflict(conflict)]).toEqual([false, true]);
    await expect(cms.get('y', { what: 'read it' })).rejects.toMatchObject({ code: 500, reason: 'HTTP500', message: 'read it: HTTP 500 HTTP500' });
  });

  it('bounds a call by its time budget (Timeout) and rethrows the caller\'s own abort reason', async () => {
    const client = await fake(() => undefined); // never answers
    const cms = namespaced(client, 'd').configMaps;
    const started = Date.now();
    const slow = await cms.get('x', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(slow).toMatchObject({ code: 0, reason: 'Timeout' });
    expect(Date.now() - started).toBeLessThan(2_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('caller stopped')), 50);
    await expect(cms.get('x', { signal: ac.signal, timeoutMs: 5_000 })).rejects.toThrow('caller stopped');
    const gone = new AbortController();
    gone.abort(new Error('already stopped'));
    await expect(cms.get('x', { signal: gone.signal })).rejects.toThrow('already stopped');
  });

  it('reports a refused connection as Unreachable', async () => {
    const client = new KubeClient({ server: 'http://127.0.0.1:1' });
    clients.push(client);
    await expect(namespaced(client, 'd').pods.get('p')).rejects.toMatchObject({ code: 0, reason: 'Unreachable' });
  });

  it('writes MicroTime with microseconds', () => {
    expect(microTime('2026-01-02T03:04:05.678Z')).toBe('2026-01-02T03:04:05.678000Z');
  });
});

describe('watch decoding', () => {
  it('splits newline-delimited events across and within chunks, and refuses a broken line', async () => {
    const chunks = ['{"type":"ADDED","object":{"a":1}}\n{"type":"MOD', 'IFIED","object":{"a":2}}\n\n', '{"type":"BOOKMARK","object":{}}'];
    const got: unknown[] = [];
    for await (const ev of watchEvents(Readable.from(chunks.map((c) => Buffer.from(c))))) got.push(ev);
    expect(got).toEqual([
      { type: 'ADDED', object: { a: 1 } },
      { type: 'MODIFIED', object: { a: 2 } },
      { type: 'BOOKMARK', object: {} },
    ]);
    const broken = async (): Promise<void> => {
      for await (const _ of watchEvents(Readable.from(['{"type":"ADDED"}\n', 'nope\n']))) void _;
    };
    await expect(broken()).rejects.toThrow('watch stream: not JSON: nope');
  });
});

describe('ListWatch', () => {
  it('re-lists when the watch request itself is answered 410 Gone, and watches with the expected query', async () => {
    // Each request takes the next scripted answer of its kind.
    const listAnswers = [10, 20].map((rv, i) => (res: ServerResponse) => json(res, 200, { metadata: { resourceVersion: String(rv) }, items: [{ metadata: { name: `o${i + 1}`, resourceVersion: '1' } }] }));
    const watchAnswers = [
      (res: ServerResponse) => json(res, 410, { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' }),
      (res: ServerResponse) => res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'w', resourceVersion: '21' } } })}\n`),
    ];
    const lists: string[] = [];
    const watches: URLSearchParams[] = [];
    const client = await fake((_req, res, url) => {
      const watching = url.searchParams.get('watch') === 'true';
      if (watching) watches.push(url.searchParams);
      else lists.push(url.searchParams.get('fieldSelector') ?? '');
      const answer = watching ? watchAnswers[watches.length - 1] : listAnswers[lists.length - 1];
      if (answer) answer(res);
      else json(res, 500, {});
    });
    const lw = new ListWatch<{ metadata?: { name?: string; resourceVersion?: string } }>({
      what: 'things',
      client,
      path: '/api/v1/namespaces/d/configmaps',
      fieldSelector: 'metadata.name!=x',
      logger: pino({ level: 'silent' }),
      backoff: { initialMs: 10, maxMs: 50 },
      watchTimeoutSeconds: 30,
    });
    const seen: string[] = [];
    lw.on((ev) => seen.push(ev.type === 'SYNCED' ? 'synced' : `${ev.type}:${ev.object.metadata?.name ?? ''}`));
    const stop = new AbortController();
    const done = lw.run(stop.signal);
    const deadline = Date.now() + 5_000;
    while (!lw.items.has('w') && Date.now() < deadline) await sleep(10);
    stop.abort();
    await done;
    expect(lists).toEqual(['metadata.name!=x', 'metadata.name!=x']);
    expect(watches.map((q) => [q.get('resourceVersion'), q.get('allowWatchBookmarks'), q.get('timeoutSeconds'), q.get('fieldSelector')])).toEqual([
      ['10', 'true', '30', 'metadata.name!=x'],
      ['20', 'true', '30', 'metadata.name!=x'],
    ]);
    expect(seen).toEqual(['ADDED:o1', 'synced', 'DELETED:o1', 'ADDED:o2', 'synced', 'ADDED:w']);
  });

  it('keys objects by what `key` says: same-named pods of two namespaces stay apart', async () => {
    const podOf = (ns: string): unknown => ({ metadata: { name: 'p', namespace: ns, uid: `uid-${ns}`, resourceVersion: '1' } });
    const client = await fake((_req, res, url) => {
      if (url.searchParams.get('watch') !== 'true') return json(res, 200, { metadata: { resourceVersion: '1' }, items: [podOf('a'), podOf('b')] });
      res.setHeader('content-type', 'application/json');
      res.write(`${JSON.stringify({ type: 'DELETED', object: podOf('a') })}\n`);
    });
    type Pod = { metadata?: { name?: string; uid?: string; resourceVersion?: string } };
    const lw = new ListWatch<Pod>({ what: 'pods', client, path: '/api/v1/pods', key: (p) => p.metadata?.uid, logger: pino({ level: 'silent' }) });
    const stop = new AbortController();
    const done = lw.run(stop.signal);
    await lw.waitForSync(stop.signal, 5_000);
    expect([...lw.items.keys()].sort()).toEqual(['uid-a', 'uid-b']);
    const deadline = Date.now() + 5_000;
    while (lw.items.has('uid-a') && Date.now() < deadline) await sleep(10);
    expect([...lw.items.keys()]).toEqual(['uid-b']);
    stop.abort();
    await done;
  });
});
