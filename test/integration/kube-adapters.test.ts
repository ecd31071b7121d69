// The coordinator's Kubernetes adapters against a REAL local API server (v1.20.2, started here in a
// temp dir): Lease election and 409s, state ConfigMap compare-and-swap under concurrent writers, the
// mesh Secret creation race, Events aggregation, pod/StatefulSet watches across an API server restart.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Event } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector } from '../../agent/lease/election.js';
import { kubeLeaseApi } from '../../agent/lease/lease-api.js';
import { PeerWatcher } from '../../agent/kube/peers.js';
import { getOrCreateMeshSecret, replicationPassword } from '../../agent/kube/secret.js';
import { StatefulSetWatcher } from '../../agent/kube/statefulsets.js';
import { sleep } from '../../common/time.js';
import { STATE_SCHEMA, StateCorruptError, decodeEnvelope } from '../../agent/state/envelope.js';
import { StaleTermError, StateStore } from '../../agent/state/store.js';
import { startControlPlane, type ControlPlane } from '../../localcluster/controlplane/index.js';
import { KubeClient } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { KubeApiError, isConflict } from '../../common/kube/errors.js';
import { EventRecorder } from '../../common/kube/events.js';
import { MERGE_PATCH, namespaced, namespaces, type Resources } from '../../common/kube/resources.js';
import { leaseName, stateConfigMapName } from '../../common/names.js';
import { connectAll, startNode } from '../support/mesh.js';

const silent = pino({ level: 'silent' });
const NS = 'adapters';


async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}

// Skipped only when the binaries are not built (scripts/provision-kubernetes.sh builds them).
describe('agent adapters on a real Kubernetes v1.20.2 API server', () => {
  let runDir = '';
  let cp: ControlPlane | undefined;
  let kube: Resources;
  const stop = new AbortController();

  beforeAll(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'shoal-kube-adapters-'));
    cp = await startControlPlane({ runDir, logger: silent });
    kube = namespaced(new KubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfigPath })), NS);
    await namespaces(kube.client).create({ metadata: { name: NS } });
  }, 180_000);

  afterAll(async () => {
    stop.abort();
    await cp?.stop();
    if (runDir) await rm(runDir, { recursive: true, force: true });
  }, 120_000);

  describe('client', () => {
    it('turns API errors into KubeApiError with code and reason, and bounds requests', async () => {
      const err = await kube.configMaps.get('none').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeApiError);
      expect(err).toMatchObject({ code: 404, reason: 'NotFound' });
      expect(String((err as Error).message)).toContain('read ConfigMap adapters/none: HTTP 404 NotFound');
      const slow = await namespaces(kube.client).list({}, { timeoutMs: 1 }).catch((e: unknown) => e);
      expect(slow).toMatchObject({ reason: 'Timeout' });
      const ac = new AbortController();
      ac.abort(new Error('caller stopped'));
      await expect(namespaces(kube.client).list({}, { signal: ac.signal })).rejects.toThrow('caller stopped');
    });

  });

  describe('Lease election', () => {
    const timings = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 400 };

    function elector(identity: string, cluster: string, releaseOnCancel: boolean, uid = '', t = timings) {
      const events: string[] = [];
      const e = new LeaderElector({
        api: kubeLeaseApi(kube, leaseName(cluster), cluster),
        identity,
        uid,
        timings: t,
        logger: silent,
        releaseOnCancel,
        onStartedLeading: () => events.push('start'),
        onStoppedLeading: () => events.push('stop'),
      });
      const ac = new AbortController();
      const done = e.run(AbortSignal.any([ac.signal, stop.signal]));
      return { e, ac, done, events };
    }

    it('elects one of two, writes microsecond timestamps, and the other takes over within the lease duration after a crash', async () => {
      const a = elector('pod-a', 'lease1', false); // releaseOnCancel=false: stopping it is a crash
      await until(() => a.e.isLeader(), 10_000, 'a leads');
      const b = elector('pod-b', 'lease1', true);
      await sleep(1_000);
      expect(b.e.isLeader()).toBe(false);
      expect(b.e.leader()).toBe('pod-a');
      const lease = await kube.leases.get(leaseName('lease1'));
      expect(lease.spec).toMatchObject({ holderIdentity: 'pod-a', leaseDurationSeconds: 2, leaseTransitions: 0 });
      expect(String(lease.spec?.renewTime)).toMatch(/\.\d{6}Z$/);

      a.ac.abort();
      await a.done;
      const crashedAt = Date.now();
      await until(() => b.e.isLeader(), 10_000, 'takeover');
      const took = Date.now() - crashedAt;
      // b measures the lease from when it last saw the record change (at most one retry before the crash).
      expect(took).toBeGreaterThan(timings.leaseDurationMs - 2.2 * timings.retryPeriodMs - 200);
      expect(took).toBeLessThan(timings.leaseDurationMs + 2.2 * timings.retryPeriodMs + 1_000);
      const after = await kube.leases.get(leaseName('lease1'));
      expect(after.spec).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 1 });

      // A graceful stop releases: the next candidate takes over on its next retry, not after a lease.
      const c = elector('pod-c', 'lease1', true);
      await sleep(500);
      b.ac.abort();
      await b.done;
      expect(b.events).toEqual(['start', 'stop']);
      const releasedAt = Date.now();
      await until(() => c.e.isLeader(), 10_000, 'takeover after release');
      expect(Date.now() - releasedAt).toBeLessThan(2.2 * timings.retryPeriodMs + 1_000);
      c.ac.abort();
      await c.done;
      expect((await kube.leases.get(leaseName('lease1'))).spec).toMatchObject({ holderIdentity: '', leaseTransitions: 2 });
    });

    it("a restarted agent of the same pod (same uid) frees its predecessor's lease at once, and a peer takes it", async () => {
      const long = { leaseDurationMs: 20_000, renewDeadlineMs: 5_000, retryPeriodMs: 400 };
      const a = elector('pod-a', 'lease3', false, 'uid-a1', long);
      await until(() => a.e.isLeader(), 10_000, 'a leads');
      const held = await kube.leases.get(leaseName('lease3'));
      expect(held.metadata?.annotations?.['shoal.dev/holder-uid']).toBe('uid-a1');
      const b = elector('pod-b', 'lease3', true, 'uid-b1', long);
      await sleep(1_000);
      a.ac.abort(); // a crash: no release
      await a.done;
      const restartedAt = Date.now();
      const a2 = elector('pod-a', 'lease3', true, 'uid-a1', long);
      await until(() => b.e.isLeader(), 15_000, 'b takes over');
      // Far sooner than the 20 s lease the crashed process left behind.
      expect(Date.now() - restartedAt).toBeLessThan(long.leaseDurationMs / 2);
      await sleep(1_500);
      expect(a2.e.isLeader()).toBe(false);
      expect(a2.events).toEqual([]);
      const after = await kube.leases.get(leaseName('lease3'));
      expect(after.spec?.holderIdentity).toBe('pod-b');
      expect(after.metadata?.annotations?.['shoal.dev/holder-uid']).toBe('uid-b1');
      for (const x of [a2, b]) x.ac.abort();
      await Promise.all([a2.done, b.done]);
    });

    it('waits out a lease naming its pod name under another uid (a recreated pod)', async () => {
      const long = { leaseDurationMs: 4_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };
      const a = elector('pod-a', 'lease4', false, 'uid-a1', long);
      await until(() => a.e.isLeader(), 10_000, 'a leads');
      a.ac.abort();
      await a.done;
      const crashedAt = Date.now();
      const recreated = elector('pod-a', 'lease4', true, 'uid-a2', long);
      await until(() => recreated.e.isLeader(), 15_000, 'the recreated pod leads after expiry');
      expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(long.leaseDurationMs - 2.2 * long.retryPeriodMs);
      recreated.ac.abort();
      await recreated.done;
    });

    it('answers a stale resourceVersion with 409 Conflict (the race an elector loses)', async () => {
      const api = kubeLeaseApi(kube, leaseName('lease2'), 'lease2');
      const bound = { signal: stop.signal, timeoutMs: 5_000 };
      const rec = { holderIdentity: 'x', holderUid: 'uid-x', leaseDurationSeconds: 2, acquireTime: new Date().toISOString(), renewTime: new Date().toISOString(), leaseTransitions: 0 };
      const created = await api.create(rec, bound);
      expect(created.record.holderUid).toBe('uid-x');
      await api.update({ ...rec, holderIdentity: 'y' }, created.resourceVersion, bound);
      const err = await api.update({ ...rec, holderIdentity: 'z' }, created.resourceVersion, bound).catch((e: unknown) => e);
      expect(isConflict(err)).toBe(true);
      const dup = await api.create(rec, bound).catch((e: unknown) => e);
      expect(dup).toMatchObject({ code: 409, reason: 'AlreadyExists' });
    });
  });

  describe('state ConfigMap store', () => {
    interface Counter {
      count: number;
      log: string[];
    }
    const decode = (raw: unknown): Counter => {
      const r = raw as Partial<Counter> | null;
      if (!r || typeof r.count !== 'number' || !Array.isArray(r.log)) throw new Error('expected {count: number, log: string[]}');
      return { count: r.count, log: r.log.map(String) };
    };
    const store = (cluster: string) => new StateStore<Counter>({ kube, cluster, decode, initial: () => ({ count: 0, log: [] }), logger: silent });

    it('loses no update under concurrent compare-and-swap writers', async () => {
      const writers = 4;
      const each = 8;
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const s = store('cas');
          for (let i = 0; i < each; i++) {
            await s.update((cur) => ({ count: cur.state.count + 1, log: [...cur.state.log, `w${w}-${i}`] }), { signal: stop.signal });
          }
        }),
      );
      const final = await store('cas').read(stop.signal);
      expect(final?.state.count).toBe(writers * each);
      expect(new Set(final?.state.log).size).toBe(writers * each);
    });

    it('bumps the term by CAS: concurrent new coordinators get distinct terms, and a stale one cannot write', async () => {
      const results = await Promise.all(['a', 'b', 'c'].map((holder) => store('terms').bumpTerm(holder, stop.signal)));
      expect(results.map((r) => r.term).sort()).toEqual([1, 2, 3]);
      const latest = results.find((r) => r.term === 3);
      const loser = results.find((r) => r.term === 1);
      await expect(store('terms').update((cur) => ({ ...cur.state, count: 99 }), { signal: stop.signal, term: loser?.term ?? -1 })).rejects.toBeInstanceOf(StaleTermError);
      const ok = await store('terms').update((cur) => ({ ...cur.state, count: 1 }), { signal: stop.signal, term: 3 });
      expect(ok).toMatchObject({ term: 3, coordinator: latest?.coordinator, state: { count: 1 } });
      // A rebuilt state never hands out a term agents already refuse.
      expect((await store('terms').bumpTerm('d', stop.signal, 10)).term).toBe(11);
    });

    it('reports a corrupt value clearly and never overwrites it', async () => {
      const name = stateConfigMapName('corrupt');
      await kube.configMaps.create({ metadata: { name }, data: { 'state.json': '{"schema":1,"term":2,"coordinator":"a","state":{"count":"many"}}' } });
      const s = store('corrupt');
      const err = await s.read(stop.signal).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateCorruptError);
      expect(String((err as Error).message)).toMatch(/"state" is invalid: expected \{count.*fix: inspect it with `kubectl -n adapters get configmap shoal-corrupt-state -o yaml`/);
      await expect(s.update((cur) => cur.state, { signal: stop.signal })).rejects.toBeInstanceOf(StateCorruptError);
      const cm = await kube.configMaps.get(name);
      expect(cm.data?.['state.json']).toContain('"many"');
      await kube.configMaps.replace(name, { ...cm, data: { 'state.json': 'not json' } });
      await expect(s.read(stop.signal)).rejects.toThrow('not JSON');
    });

    it('is the mesh\'s term authority: a command is accepted only for the term and holder the ConfigMap holds', async () => {
      const s = store('authority');
      const { term } = await s.bumpTerm('coord-a', stop.signal);
      const [a, b, x] = [await startNode('coord-a'), await startNode('agent-b', { termAuthority: (signal) => s.currentTerm(signal) }), await startNode('coord-x')];
      try {
        connectAll([a, b, x]);
        b.mesh.onCommand(async () => ({ ok: true }));
        await until(() => a.mesh.peers().some((p) => p.pod === 'agent-b' && p.connected) && x.mesh.peers().some((p) => p.pod === 'agent-b' && p.connected), 5_000, 'links');
        // x claims a term the ConfigMap never granted: refused, and b's known term is not raised by it.
        expect(await x.mesh.sendCommand('agent-b', { kind: 'promote', payload: {}, term: term + 5 }, 5_000)).toMatchObject({ ok: false, error: expect.stringContaining('not persisted') });
        expect(await a.mesh.sendCommand('agent-b', { kind: 'reconfigure', payload: {}, term }, 5_000)).toMatchObject({ ok: true });
        // A new coordinator bumps the term by CAS; from then on the old one is fenced.
        const next = await s.bumpTerm('coord-x', stop.signal);
        expect(await x.mesh.sendCommand('agent-b', { kind: 'promote', payload: {}, term: next.term }, 5_000)).toMatchObject({ ok: true });
        expect(await a.mesh.sendCommand('agent-b', { kind: 'reconfigure', payload: {}, term }, 5_000)).toMatchObject({ ok: false, error: expect.stringContaining('stale term') });
      } finally {
        await Promise.all([a.stop(), b.stop(), x.stop()]);
      }
    });

    it('refuses to write a state its own decoder rejects', async () => {
      await expect(store('guard').update(() => ({ count: 'x' }) as unknown as Counter, { signal: stop.signal })).rejects.toThrow('refusing to write invalid cluster state');
    });
  });

  describe('mesh Secret', () => {
    it('two agents racing to create it end up with one secret and the same token', async () => {
      const [x, y, z] = await Promise.all([1, 2, 3].map(() => getOrCreateMeshSecret(kube, 'race', silent, stop.signal)));
      expect(new Set([x?.token, y?.token, z?.token]).size).toBe(1);
      expect([x, y, z].filter((s) => s?.created)).toHaveLength(1);
      expect(x?.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(replicationPassword(x?.token ?? '')).toMatch(/^[0-9a-f]{64}$/);
      const again = await getOrCreateMeshSecret(kube, 'race', silent, stop.signal);
      expect(again).toEqual({ token: x?.token, created: false });
    });

    it('rejects a user-made secret with a short token, saying how to fix it', async () => {
      await kube.secrets.create({ metadata: { name: 'shoal-weak-mesh' }, stringData: { token: 'short' } });
      await expect(getOrCreateMeshSecret(kube, 'weak', silent, stop.signal)).rejects.toThrow(/too short.*fix: delete Secret shoal-weak-mesh/);
    });
  });

  describe('Events', () => {
    const eventsOf = async (name: string): Promise<CoreV1Event[]> =>
      (await kube.events.list({ fieldSelector: `involvedObject.name=${name}` })).items;

    it('aggregates repeats into one Event with a count, and rate-limits new ones per object', async () => {
      const rec = new EventRecorder({ kube, host: 'pod-a', logger: silent, minUpdateIntervalMs: 0, burst: 2 });
      for (let i = 0; i < 5; i++) rec.record({ kind: 'StatefulSet', name: 'ev-sts' }, { type: 'Normal', reason: 'Joined', message: 'storage-1 joined storage' });
      await rec.flush();
      let evs = await eventsOf('ev-sts');
      expect(evs).toHaveLength(1);
      expect(evs[0]).toMatchObject({ reason: 'Joined', type: 'Normal', count: 5, source: { component: 'shoal-agent', host: 'pod-a' }, involvedObject: { kind: 'StatefulSet', name: 'ev-sts' } });
      rec.record({ kind: 'StatefulSet', name: 'ev-sts' }, { type: 'Warning', reason: 'ExpelFailed', message: 'one' });
      rec.record({ kind: 'StatefulSet', name: 'ev-sts' }, { type: 'Warning', reason: 'ExpelFailed', message: 'two' }); // over the burst of 2
      await rec.close();
      evs = await eventsOf('ev-sts');
      expect(evs.map((e) => e.message).sort()).toEqual(['one', 'storage-1 joined storage']);
    });

    it('coalesces count updates within the minimum update interval', async () => {
      const rec = new EventRecorder({ kube, host: 'pod-a', logger: silent, minUpdateIntervalMs: 60_000 });
      const record = (): void => rec.record({ kind: 'Pod', name: 'ev-pod' }, { type: 'Warning', reason: 'Unreachable', message: 'master not reachable' });
      record();
      await until(async () => (await eventsOf('ev-pod')).length === 1, 5_000, 'event created');
      for (let i = 0; i < 19; i++) record();
      await sleep(300);
      expect((await eventsOf('ev-pod'))[0]?.count).toBe(1); // one create; 19 increments pending, not 19 writes
      await rec.close();
      expect((await eventsOf('ev-pod'))[0]?.count).toBe(20);
    });
  });

  describe('pod and StatefulSet watches', () => {
    it('follow a real StatefulSet: peers with owner, ordinal and revision; annotations; pod IPs; scale-down; API server restart', async () => {
      const peers = new PeerWatcher(kube, 'watch', { logger: silent, backoff: { initialMs: 100, maxMs: 1_000 } });
      const sets = new StatefulSetWatcher(kube, 'watch', { logger: silent, backoff: { initialMs: 100, maxMs: 1_000 } });
      const ac = new AbortController();
      const runs = [peers.run(AbortSignal.any([ac.signal, stop.signal])), sets.run(AbortSignal.any([ac.signal, stop.signal]))];
      try {
        await peers.waitForSync(stop.signal, 10_000);
        const labels = { 'shoal.dev/cluster': 'watch', app: 'storage' };
        await kube.statefulSets.create({
          metadata: { name: 'storage', labels: { 'shoal.dev/cluster': 'watch' }, annotations: { 'shoal.dev/failover': 'manual' } },
          spec: {
            replicas: 2,
            serviceName: 'storage',
            podManagementPolicy: 'Parallel',
            selector: { matchLabels: { app: 'storage' } },
            template: { metadata: { labels }, spec: { containers: [{ name: 'tarantool', image: 'tarantool/tarantool:2.6' }] } },
          },
        });
        await until(() => peers.current.size === 2, 30_000, 'two pods');
        const p0 = peers.current.get('storage-0');
        expect(p0).toMatchObject({ pod: 'storage-0', replicaset: 'storage', ordinal: 0, deleting: false, ready: false, ip: null });
        expect(p0?.revision).toMatch(/^storage-/);
        await until(() => sets.current.get('storage')?.updateRevision != null, 30_000, 'StatefulSet status');
        expect(sets.current.get('storage')).toMatchObject({ name: 'storage', replicas: 2, failover: 'manual', paused: false, problems: [] });
        expect(sets.current.get('storage')?.updateRevision).toBe(p0?.revision);

        await kube.statefulSets.patch('storage', { metadata: { annotations: { 'shoal.dev/paused': 'true', 'shoal.dev/failover': 'Auto' } } }, MERGE_PATCH);
        await until(() => sets.current.get('storage')?.paused === true, 10_000, 'paused seen');
        expect(sets.current.get('storage')?.failover).toBe('manual');
        expect(sets.current.get('storage')?.problems[0]).toContain('"Auto" is neither');

        await kube.pods.patch('storage-1', { status: { podIP: '127.0.1.2', podIPs: [{ ip: '127.0.1.2' }] } }, MERGE_PATCH, { subresource: 'status' });
        await until(() => peers.current.get('storage-1')?.ip === '127.0.1.2', 10_000, 'pod IP seen');

        // The API server goes away and comes back: the watches recover and see what changed after.
        await cp?.stopApiServer();
        await sleep(1_000);
        await cp?.startApiServer();
        await kube.statefulSets.patch('storage', { spec: { replicas: 1 } }, MERGE_PATCH);
        await until(() => !peers.current.has('storage-1') && sets.current.get('storage')?.replicas === 1, 60_000, 'scale-down seen after restart');
        expect([...peers.current.keys()]).toEqual(['storage-0']);
      } finally {
        ac.abort();
        await Promise.all(runs);
      }
    });
  });
});

describe('state envelope (pure)', () => {
  const where = { namespace: 'ns', name: 'shoal-x-state' };
  const decodeNumber = (raw: unknown): number => {
    if (typeof raw !== 'number') throw new Error('expected a number');
    return raw;
  };
  const env = (over: Record<string, unknown>): string => JSON.stringify({ schema: 1, term: 2, coordinator: 'a', updatedAt: 't', state: 5, ...over });

  it('round-trips and keeps only known fields', () => {
    expect(decodeEnvelope(env({ extra: 1 }), decodeNumber, where)).toEqual({ schema: 1, term: 2, coordinator: 'a', updatedAt: 't', state: 5 });
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no schema', env({ schema: undefined }), /"schema" must be a positive integer/],
    ['a negative term', env({ term: -1 }), /"term" must be a non-negative integer/],
    ['a fractional term', env({ term: 1.5 }), /"term" must be a non-negative integer/],
    ['a bad state', env({ state: 'x' }), /"state" is invalid: expected a number/],
  ])('rejects %s as corrupt, with the kubectl command to inspect it', (_name, text, message) => {
    expect(() => decodeEnvelope(text, decodeNumber, where)).toThrow(StateCorruptError);
    expect(() => decodeEnvelope(text, decodeNumber, where)).toThrow(message);
    expect(() => decodeEnvelope(text, decodeNumber, where)).toThrow('kubectl -n ns get configmap shoal-x-state -o yaml');
  });

  it('refuses a schema newer than it understands, without calling it corrupt', () => {
    let err: unknown;
    try {
      decodeEnvelope(env({ schema: STATE_SCHEMA + 1 }), decodeNumber, where);
    } catch (e) {
      err = e;
    }
    expect(err).not.toBeInstanceOf(StateCorruptError);
    expect(String(err)).toContain('newer than this agent understands');
  });
});
