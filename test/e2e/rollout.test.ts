import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentStatus, RolloutPhase } from '../../common/status.js';
import { condition, createNamespace, deleteNamespace, kubeClients, kubectl, podRuntime, waitFor } from '../../tools/kube.js';
import { agentStatus, consoleOf, deployReplicaSet, masterTarget, waitForReplicaSet, type ReplicaSetSpec } from '../../tools/shoal-cluster.js';
import { startWriteLoad, summarize, verifyAcknowledged, type WriteLoad, type WriteSummary } from '../../tools/workload.js';

// Issue 7 "done when", end to end: master-last rolling restarts of a 3-replica StatefulSet under a
// continuous write load (template change, pause/resume, a second template change, the master killed
// mid-rollout, `kubectl rollout restart`); the naive RollingUpdate-order baseline is measured next
// to Shoal's rollout by `npm run bench` (bench/rolling-restart.ts). A watcher polls pods and every agent's /status, so each deletion is recorded with
// the role its pod had just before; the write load records every write's outcome.

const kubeconfig = inject('kubeconfig');
const stateFile = inject('stateFile');
const k = kubeClients(kubeconfig);
const SET = 'storage';
const REPLICAS = 3;
const WRITE_INTERVAL_MS = 100;
// A write slower than this counts as unavailability (the machine is small and shared).
const GAP_THRESHOLD_MS = 1_000;
const ROLLOUT_TIMEOUT_MS = 360_000;

interface PodView {
  name: string;
  uid: string;
  ip: string | null;
  deleting: boolean;
  revision: string | null;
  ready: boolean;
  status: AgentStatus | null;
}

interface Snapshot {
  at: number;
  updateRevision: string | null;
  pods: PodView[];
}

interface Deletion {
  pod: string;
  uid: string;
  at: number;
  revision: string | null;
  /** The pod's own role (its agent's /status) in the last snapshot before its deletion was seen. */
  roleBefore: string | null;
  roBefore: boolean | null;
  /** The master the agents agreed on just before (null = none agreed). */
  masterBefore: string | null;
}

/** What a test's replica set went through, polled every ~300 ms. */
class Watcher {
  readonly snapshots: Snapshot[] = [];
  readonly deletions: Deletion[] = [];
  readonly phases = new Set<RolloutPhase>();
  readonly masters: Array<{ at: number; master: string | null }> = [];
  /** The coordinator's rollout metrics: the most restarts any coordinator counted, and the phases its gauge showed. */
  restartsCounted = 0;
  readonly gaugePhases = new Set<string>();
  private readonly stopping = new AbortController();
  private readonly done: Promise<void>;

  constructor(private readonly ns: string) {
    this.done = this.run();
  }

  get last(): Snapshot | undefined {
    return this.snapshots.at(-1);
  }

  private async snapshot(): Promise<Snapshot> {
    const [pods, sts] = await Promise.all([
      k.in(this.ns).pods.list({ labelSelector: `app=${SET}` }),
      k.in(this.ns).statefulSets.get(SET),
    ]);
    const views = await Promise.all(
      pods.items.map(async (p: V1Pod): Promise<PodView> => ({
        name: p.metadata?.name ?? '',
        uid: p.metadata?.uid ?? '',
        ip: p.status?.podIP ?? null,
        deleting: p.metadata?.deletionTimestamp !== undefined,
        revision: p.metadata?.labels?.['controller-revision-hash'] ?? null,
        ready: condition(p, 'Ready') === 'True',
        status: p.metadata?.deletionTimestamp ? null : await agentStatus(p.status?.podIP, 1_000),
      })),
    );
    return { at: Date.now(), updateRevision: sts.status?.updateRevision ?? null, pods: views.sort((a, b) => a.name.localeCompare(b.name)) };
  }

  private record(s: Snapshot): void {
    const prev = this.last;
    if (prev) {
      const masterBefore = agreedMaster(prev);
      for (const p of prev.pods) {
        if (p.deleting) continue;
        const now = s.pods.find((q) => q.uid === p.uid);
        if (now === undefined || now.deleting) {
          this.deletions.push({
            pod: p.name,
            uid: p.uid,
            at: s.at,
            revision: p.revision,
            roleBefore: p.status?.instance.role ?? null,
            roBefore: p.status?.instance.ro ?? null,
            masterBefore,
          });
        }
      }
    }
    for (const p of s.pods) if (p.status?.rollout) this.phases.add(p.status.rollout.phase);
    void this.scrapeCoordinator(s);
    const master = agreedMaster(s);
    if (master !== null && this.masters.at(-1)?.master !== master) this.masters.push({ at: s.at, master });
    this.snapshots.push(s);
  }

  private async scrapeCoordinator(s: Snapshot): Promise<void> {
    const ip = s.pods.find((p) => p.status?.coordinator.self)?.ip;
    if (!ip) return;
    try {
      const text = await (await fetch(`http://${ip}:8080/metrics`, { signal: AbortSignal.timeout(1_000) })).text();
      for (const m of text.matchAll(/^shoal_rollout_restarts_total\{[^}]*\} (\d+)$/gm)) this.restartsCounted = Math.max(this.restartsCounted, Number(m[1]));
      for (const m of text.matchAll(/^shoal_rollout_phase\{[^}]*phase="([a-z-]+)"[^}]*\} 1$/gm)) if (m[1]) this.gaugePhases.add(m[1]);
    } catch {
      // the coordinator is restarting: the next poll tells
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        this.record(await this.snapshot());
      } catch {
        // the API server is busy: the next poll tells
      }
      await sleep(300, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }

  /** Pods deleted or missing (ordinal < REPLICAS), at most, over every snapshot. */
  maxDown(): number {
    return Math.max(
      0,
      ...this.snapshots.map((s) => {
        let down = 0;
        for (let n = 0; n < REPLICAS; n++) {
          const p = s.pods.find((q) => q.name === `${SET}-${n}` && !q.deleting);
          if (p === undefined) down++;
        }
        return down;
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.done;
  }
}

/** The master every answering agent names, when exactly one instance says it is the writable master. */
function agreedMaster(s: Snapshot): string | null {
  const live = s.pods.filter((p) => p.status !== null);
  const masters = live.filter((p) => p.status?.instance.role === 'master' && p.status.instance.ro === false);
  if (masters.length !== 1) return null;
  const name = masters[0]?.name ?? null;
  return live.every((p) => p.status?.replicasets.find((r) => r.name === SET)?.master === name) ? name : null;
}

interface Env {
  ns: string;
  master: string;
  watcher: Watcher;
  load: WriteLoad;
  t0: number;
}

/** A namespace with a fresh 3-replica set, a watcher and a write load; all stopped and removed after the test. */
async function setUp(prefix: string, how: Pick<ReplicaSetSpec, 'lane' | 'style'> = {}): Promise<Env> {
  const t0 = Date.now();
  const ns = await createNamespace(k.client, prefix);
  const stops: Array<() => Promise<unknown>> = [() => deleteNamespace(k.client, ns)];
  onTestFinished(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });
  await deployReplicaSet(k, { namespace: ns, cluster: 'roll', name: SET, replicas: REPLICAS, env: { ROLL: '1' }, ...how });
  const master = await waitForReplicaSet(k, ns, SET, REPLICAS, { timeoutMs: 240_000 });
  const watcher = new Watcher(ns);
  const load = startWriteLoad({ target: masterTarget(k, stateFile, ns, SET), space: 'load', intervalMs: WRITE_INTERVAL_MS });
  stops.splice(1, 0, () => load.stop(), () => watcher.stop());
  // Writes flow before anything changes (the space exists once the master ran init.lua).
  await waitFor('a first acknowledged write', () => load.acknowledged > 5, { timeoutMs: 60_000 });
  log(`[${prefix}] replica set up in ${s(Date.now() - t0)}, master ${master}`);
  return { ns, master, watcher, load, t0: Date.now() };
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function sh(args: string[]): Promise<string> {
  const r = await kubectl(kubeconfig, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const setEnv = (ns: string, value: string): Promise<string> => sh(['-n', ns, 'set', 'env', `statefulset/${SET}`, '-c', 'tarantool', `ROLL=${value}`]);
const pause = (ns: string): Promise<string> => sh(['-n', ns, 'annotate', '--overwrite', `statefulset/${SET}`, 'shoal.dev/paused=true']);
const resume = (ns: string): Promise<string> => sh(['-n', ns, 'annotate', `statefulset/${SET}`, 'shoal.dev/paused-']);

/** Every pod of the set on updateRevision (which differs from `before`), Ready, one master agreed, rollout idle. */
async function waitRolledOut(e: Env, before: string): Promise<string> {
  const revision = await waitFor(
    `every pod of ${e.ns}/${SET} on the new revision, Ready, rollout idle`,
    () => {
      const last = e.watcher.last;
      const rev = last?.updateRevision;
      if (!last || !rev || rev === before) return undefined;
      const live = last.pods.filter((p) => !p.deleting);
      if (live.length !== REPLICAS || !live.every((p) => p.ready && p.revision === rev)) return undefined;
      if (agreedMaster(last) === null || !live.every((p) => p.status?.rollout?.phase === 'idle')) return undefined;
      return rev;
    },
    { timeoutMs: ROLLOUT_TIMEOUT_MS, intervalMs: 500 },
  );
  await waitForReplicaSet(k, e.ns, SET, REPLICAS, { timeoutMs: 60_000 });
  return revision;
}

async function currentRevision(ns: string): Promise<string> {
  const sts = await k.in(ns).statefulSets.get(SET);
  const rev = sts.status?.updateRevision;
  if (!rev) throw new Error('the StatefulSet has no updateRevision');
  return rev;
}

/** Stops the load and checks every acknowledged write is on every instance. */
async function finish(e: Env, label: string): Promise<WriteSummary> {
  await e.load.stop();
  const summary = summarize(e.load.log, { gapThresholdMs: GAP_THRESHOLD_MS });
  const targets = [0, 1, 2].map((n) => `${SET}-${n}`).map((pod) => ({ name: pod, console: consoleOf(stateFile, e.ns, pod) ?? '' }));
  const checks = await verifyAcknowledged(e.load.log, targets, { settleMs: 30_000 });
  log(
    `[${label}] writes: ${summary.acknowledged} acknowledged, ${summary.failed} failed of ${summary.attempted} in ${s(summary.durationMs)}; ` +
      `longest gap ${s(summary.longestGapMs)}, unavailable ${s(summary.unavailableMs)} (gaps > ${GAP_THRESHOLD_MS} ms: ${summary.gaps.length}); errors ${JSON.stringify(summary.errors)}`,
  );
  for (const c of checks) {
    expect(c.error, `${c.name} readable`).toBeUndefined();
    expect(c.missing, `acknowledged writes missing on ${c.name}`).toEqual([]);
  }
  expect(summary.acknowledged).toBeGreaterThan(0);
  return summary;
}

function describeDeletions(label: string, e: Env): void {
  for (const d of e.watcher.deletions) {
    log(`[${label}] +${s(d.at - e.t0)} deleted ${d.pod} (rev ${d.revision ?? '?'}, its role ${d.roleBefore ?? '?'}${d.roBefore === false ? ' rw' : ''}, master ${d.masterBefore ?? 'none agreed'})`);
  }
  log(`[${label}] masters: ${e.watcher.masters.map((m) => `+${s(m.at - e.t0)} ${m.master ?? '-'}`).join(', ')}; phases seen: ${[...e.watcher.phases].join(', ')}`);
}

/**
 * The master was never deleted while it was the writable master. The watcher polls every ~300 ms and
 * a hand-over followed by the old master's deletion can fall between two polls: a pod seen as master
 * in the poll before its deletion counts as deleted-as-master only when no other master was agreed
 * by the poll that saw the deletion (what a blind delete looks like).
 */
function expectNoMasterDeleted(e: Env): void {
  for (const d of e.watcher.deletions) {
    const wasMaster = (d.roleBefore === 'master' && d.roBefore === false) || d.masterBefore === d.pod;
    const handedOver = e.watcher.masters.some((m) => m.master !== d.pod && m.at <= d.at && m.at >= d.at - 1_000);
    expect(wasMaster && !handedOver, `${d.pod} deleted while it was the master, with no hand-over before`).toBe(false);
  }
}

/** Replicas first (one at a time), then the old master after it was handed over to an updated replica. */
function expectMasterLastOrder(e: Env, label: string): void {
  const dels = e.watcher.deletions;
  const replicas = [0, 1, 2].map((n) => `${SET}-${n}`).filter((p) => p !== e.master);
  expect(dels.map((d) => d.pod)).toHaveLength(3);
  expect(dels.slice(0, 2).map((d) => d.pod).sort()).toEqual(replicas);
  expect(dels[2]?.pod).toBe(e.master);
  // The hand-over came first: the last agreed master at the old master's deletion is an updated
  // replica (the agents may not all have agreed yet in the very last poll before it).
  const last = dels[2];
  const masterThen = e.watcher.masters.filter((m) => last !== undefined && m.at <= last.at).at(-1)?.master;
  expect(replicas).toContain(masterThen);
  expect(e.watcher.maxDown(), 'pods down at once').toBeLessThanOrEqual(1);
  expectNoMasterDeleted(e);
  log(`[${label}] order ok: ${dels.map((d) => d.pod).join(' → ')}`);
}

async function rolloutEvents(ns: string): Promise<string[]> {
  const events = await k.in(ns).events.list();
  return events.items
    .filter((ev) => ev.involvedObject.kind === 'StatefulSet' && ev.involvedObject.name === SET)
    .map((ev) => `${ev.reason ?? ''}: ${ev.message ?? ''}`);
}

const measured: Record<string, { longestGapMs: number; unavailableMs: number; acknowledged: number; failed: number; durationMs: number }> = {};
const keep = (name: string, sum: WriteSummary): void => {
  measured[name] = { longestGapMs: Math.round(sum.longestGapMs), unavailableMs: Math.round(sum.unavailableMs), acknowledged: sum.acknowledged, failed: sum.failed, durationMs: Math.round(sum.durationMs) };
};

afterAll(async () => {
  if (Object.keys(measured).length === 0) return;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-rollout-'));
  const file = path.join(dir, 'rollout-gaps.json');
  await writeFile(file, `${JSON.stringify({ gapThresholdMs: GAP_THRESHOLD_MS, writeIntervalMs: WRITE_INTERVAL_MS, measured }, null, 2)}\n`);
  log('rollout write availability (longest gap / unavailable):');
  for (const [name, m] of Object.entries(measured)) log(`  ${name.padEnd(24)} ${s(m.longestGapMs).padStart(8)} / ${s(m.unavailableMs).padStart(8)}  (${m.acknowledged} ok, ${m.failed} failed, ${s(m.durationMs)})`);
  log(`written to ${file}`);
});

describe('master-last rolling restart', () => {
  it('a template change restarts the replicas one at a time, hands the master over, then restarts the old master', async () => {
    const e = await setUp('roll-tpl');
    const before = await currentRevision(e.ns);
    await setEnv(e.ns, '2');
    const rev = await waitRolledOut(e, before);
    log(`[template] rolled out to ${rev} in ${s(Date.now() - e.t0)}`);
    await e.watcher.stop();
    describeDeletions('template', e);
    expectMasterLastOrder(e, 'template');
    expect(e.watcher.phases).toContain('restarting-replicas');
    expect(e.watcher.phases).toContain('restarting-old-master');
    const events = await rolloutEvents(e.ns);
    log(`[template] StatefulSet events:\n  ${events.join('\n  ')}`);
    expect(events.filter((ev) => ev.startsWith('RolloutRestart')).length).toBeGreaterThanOrEqual(3);
    expect(events.some((ev) => ev.startsWith('Switchover: rollout'))).toBe(true);
    // Emitted by the coordinator that sees the rollout finish: one elected after it saw only idle has nothing to report.
    log(`[template] RolloutComplete event: ${events.some((ev) => ev.startsWith('RolloutComplete')) ? 'yes' : 'no'}`);
    log(`[template] coordinator metrics: shoal_rollout_restarts_total up to ${e.watcher.restartsCounted}, shoal_rollout_phase showed ${[...e.watcher.gaugePhases].join(', ')}`);
    // No assertion on shoal_rollout_restarts_total: it counts per coordinator process, and in this
    // rollout each coordinator may order its own pod's restart (the counter dies with it) — the
    // RolloutRestart Events above are the durable record.
    expect(e.watcher.gaugePhases).toContain('restarting-replicas');
    keep('shoal rollout', await finish(e, 'template'));
  });
});

describe('a rollout re-plans after every step', () => {
  it('shoal.dev/paused stops it at the next step boundary; removing the annotation resumes it', async () => {
    const e = await setUp('roll-pause');
    const before = await currentRevision(e.ns);
    await setEnv(e.ns, '2');
    await waitFor('the first replica restart', () => e.watcher.deletions.length >= 1, { timeoutMs: 180_000, intervalMs: 100 });
    await pause(e.ns);
    const pausedAt = Date.now();
    const shown = await waitFor(
      '/status.rollout.phase paused',
      () => e.watcher.last?.pods.map((p) => p.status?.rollout).find((r) => r?.phase === 'paused'),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    log(`[pause] /status.rollout ${JSON.stringify(shown)} ${s(Date.now() - pausedAt)} after the annotation`);
    const atPause = e.watcher.deletions.length;
    // "A while": several coordinator rounds and longer than one replica restart takes.
    await sleep(25_000);
    expect(e.watcher.deletions.length, 'deletions while paused').toBe(atPause);
    expect(atPause).toBe(1);
    await resume(e.ns);
    const resumedAt = Date.now();
    const rev = await waitRolledOut(e, before);
    log(`[pause] rolled out to ${rev} ${s(Date.now() - resumedAt)} after resuming`);
    await e.watcher.stop();
    describeDeletions('pause', e);
    expect(e.watcher.deletions.filter((d) => d.at > pausedAt && d.at < resumedAt)).toEqual([]);
    expectMasterLastOrder(e, 'pause');
    keep('shoal rollout, paused', await finish(e, 'pause'));
  });

  it('a second template change mid-rollout re-plans: every pod ends on the newest revision', async () => {
    const e = await setUp('roll-twice');
    const before = await currentRevision(e.ns);
    await setEnv(e.ns, '2');
    const first = await waitFor('the first new revision', async () => ((await currentRevision(e.ns)) !== before ? currentRevision(e.ns) : undefined), { timeoutMs: 30_000 });
    await waitFor('the first replica restart', () => e.watcher.deletions.length >= 1, { timeoutMs: 180_000, intervalMs: 100 });
    await setEnv(e.ns, '3');
    const newest = await waitFor('the second new revision', async () => {
      const r = await currentRevision(e.ns);
      return r !== first ? r : undefined;
    }, { timeoutMs: 30_000 });
    const rev = await waitRolledOut(e, first);
    log(`[twice] revisions ${before} → ${first} → ${newest}; ended on ${rev} in ${s(Date.now() - e.t0)}`);
    await e.watcher.stop();
    describeDeletions('twice', e);
    expect(rev).toBe(newest);
    expect(e.watcher.last?.pods.filter((p) => !p.deleting).map((p) => p.revision)).toEqual([newest, newest, newest]);
    expect(e.watcher.maxDown(), 'pods down at once').toBeLessThanOrEqual(1);
    expectNoMasterDeleted(e);
    keep('shoal rollout, re-planned', await finish(e, 'twice'));
  });

  // The kubelet restarts the killed container within seconds, usually before SHOAL_FAILOVER_TIMEOUT_MS:
  // then the master is recovered in place rather than replaced (the log says which happened).
  it("the master's Tarantool SIGKILLed mid-rollout: the replica set recovers, the plan continues, nothing acknowledged is lost", async () => {
    const e = await setUp('roll-kill');
    const before = await currentRevision(e.ns);
    await setEnv(e.ns, '2');
    // After the first replica is back: the master dies while the rollout is between steps.
    const first = await waitFor('the first replica restart', () => e.watcher.deletions[0], { timeoutMs: 180_000, intervalMs: 100 });
    await waitFor(`${first.pod} back and Ready`, () => e.watcher.last?.pods.some((p) => p.name === first.pod && p.uid !== first.uid && p.ready), { timeoutMs: 180_000 });
    const master = agreedMaster(e.watcher.last ?? { at: 0, updateRevision: null, pods: [] });
    expect(master).not.toBeNull();
    const pid = podRuntime(stateFile, e.ns, master ?? '')?.pids['tarantool'];
    expect(pid, `pid of ${master ?? '?'}'s Tarantool`).toBeTypeOf('number');
    const killedAt = Date.now();
    process.kill(pid ?? 0, 'SIGKILL');
    log(`[kill] SIGKILL ${master ?? '?'}'s Tarantool (pid ${pid ?? '?'}) at +${s(killedAt - e.t0)}`);
    const rev = await waitRolledOut(e, before);
    log(`[kill] rolled out to ${rev} ${s(Date.now() - killedAt)} after the kill`);
    await e.watcher.stop();
    describeDeletions('kill', e);
    const changes = e.watcher.masters.filter((m) => m.at > killedAt && m.at < (e.watcher.deletions.at(-1)?.at ?? Infinity) - 1_000);
    log(`[kill] ${changes.length > 0 ? `failover to ${changes.map((m) => m.master ?? '-').join(', ')} before the rollout's hand-over` : `no failover: ${master ?? '?'} was recovered in place`}`);
    expectNoMasterDeleted(e);
    keep('shoal rollout, master killed', await finish(e, 'kill'));
  });

  // Tarantool 3 in its own config style (the hand-over is a config reload and a promote), and the
  // 2.6 compatibility lane.
  it.each([
    { what: 'Tarantool 3, its own config style', prefix: 'roll-restart', label: 'restart', how: { style: 'native' } as const },
    { what: 'Tarantool 2.6, the compatibility lane', prefix: 'roll-restart26', label: 'restart 2.6', how: { lane: '2.6' } as const },
  ])('kubectl rollout restart rolls the replica set like a template change ($what)', async ({ prefix, label, how }) => {
    const e = await setUp(prefix, how);
    const before = await currentRevision(e.ns);
    await sh(['-n', e.ns, 'rollout', 'restart', `statefulset/${SET}`]);
    const rev = await waitRolledOut(e, before);
    log(`[${label}] rolled out to ${rev} in ${s(Date.now() - e.t0)}`);
    await e.watcher.stop();
    describeDeletions(label, e);
    expectMasterLastOrder(e, label);
    keep(`kubectl rollout restart (${label})`, await finish(e, label));
  });
});
