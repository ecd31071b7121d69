// The chaos run: a 3-instance replica set of the chosen Tarantool (lane) under logged write loads
// (is_sync space; a paced, an unpaced and a concurrent load: tools/write-mix.ts), faults at
// seeded moments (schedule.ts), a sampler of every instance's box.ro/status every 100 ms throughout
// (through the admin consoles, unix sockets: no network fault or frozen agent hides an instance from
// it); then the cluster settles and the checkers assert: every acknowledged write on every instance,
// never two writable instances in one sample, the history of puts and gets (a tenth of the
// operations are gets of recent keys on the master; the final state read as gets) linearizable by
// Porcupine (tools/linearizability), one master and every pod Ready within a bound.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiFaultCounts } from '../../localcluster/api-fault-proxy.js';
import { freeIpBase } from '../../localcluster/kubelet/ipbase-lock.js';
import { defaultLane, tarantoolImage, versionMatchesLane, type TarantoolLane } from '../../demo/tarantool-binaries.js';
import { startShoalStack, type ShoalStack } from '../../demo/shoal-stack.js';
import { errorMessage } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { createNamespace, deleteNamespace, kubeClients } from '../kube.js';
import { startObservedLoad } from '../observed-load.js';
import { deployReplicaSet, localPods, tarantoolVersions, waitForReplicaSet } from '../shoal-cluster.js';
import { writeTimelineSvg } from '../timeline-svg.js';
import { checkWriteTerms } from '../write-terms.js';
import { countHistory, finalReads, historyOf, writeHistory, type HistoryCounts } from '../history.js';
import { verifyAcknowledged } from '../workload.js';
import { describeLoads, type LoadSummary } from '../write-mix.js';
import { healAll, injectFault, type FaultOutcome } from './faults.js';
import { checkLinearizability, type LinearizabilityResult } from './linearizability.js';
import { longestGapCause, type GapCause } from './gap-cause.js';
import { chaosSchedule, describeSchedule, FAULT_KINDS, type FaultKind } from './schedule.js';

export interface ChaosOptions {
  minutes: number;
  seed: number;
  /** The Tarantool the pods run. Default defaultLane() (3 unless SHOAL_TARANTOOL_LANE says otherwise). */
  lane?: TarantoolLane;
  /** A running stack to use (its namespace is deleted after); without it one is started and stopped. */
  stack?: ShoalStack;
  /** Time allowed, after the last fault, for one agreed master and every pod Ready. Default 180 s. */
  convergeBoundMs?: number;
  /** Where to draw the timeline (and its data, `<svg>.json`, for `npm run timeline`); none when unset. */
  svg?: string;
  log(line: string): void;
  signal?: AbortSignal;
  /** Keep the run directory (pod and agent logs) even when the run passed. */
  keep?: boolean;
  /** Where the operation history goes (JSON lines); Porcupine's visualisation of a violation goes beside it (.html). Default: the run directory. */
  history?: string;
}

export interface ChaosSummary {
  seed: number;
  minutes: number;
  /** The lane asked for, the pods' image, and box.info.version per pod (agents' /status) once the set first formed. */
  tarantool: { lane: TarantoolLane; image: string; versions: Record<string, string | null> };
  /** Wall time of the chaos phase and of the whole run, seconds. */
  chaosS: number;
  totalS: number;
  faults: Record<FaultKind, { injected: number; skipped: number }>;
  /** What the API fault proxy injected over the run (null: the pods talked to the API server directly). */
  apiProxy: ApiFaultCounts | null;
  outcomes: FaultOutcome[];
  /** All writers together; longestGapS is the longest gap of any writer. */
  writes: { attempted: number; acknowledged: number; failed: number; longestGapS: number };
  /** The longest stretch without any acknowledged write and the faults that began just before or in it. */
  longestGap: GapCause | null;
  /** Per load: writers, writes/s, longest gap, failures. */
  loads: LoadSummary[];
  lost: number;
  /** Instances whose acknowledged writes could not be read. */
  unread: string[];
  samples: number;
  /** The sampler's interval (ms): a dual-writable stretch shorter than this can fall between samples. */
  sampleMs: number;
  dualWritableSamples: number;
  /** The write history's check (tools/write-terms.ts): acknowledged writes with a term, terms seen, findings. 0 checked on 2.6.0. */
  dualWritableHistory: { checked: number; terms: number; violations: number };
  /** The operation history (puts, gets, the final reads) and Porcupine's verdict on it. */
  history: HistoryCounts & { file: string };
  linearizability: LinearizabilityResult;
  /** From the end of the last fault to one agreed master with every pod Ready; null when it did not within the bound. */
  convergeS: number | null;
  violations: string[];
}

const REPLICAS = 3;
const RS = 'cs';
/** The unpaced writers write a few million rows in 30 minutes (about 50 bytes each): a cap, touched only as used. */
const MEMTX_MEMORY_MB = 512;
/** Sampler interval: every instance's box.info.ro ten times a second. */
const SAMPLE_MS = 100;
/** Before each write, a get of a recently written key with this probability. */
const READ_SHARE = 0.1;

export async function runChaos(o: ChaosOptions): Promise<ChaosSummary> {
  const started = Date.now();
  const signal = o.signal ?? new AbortController().signal;
  const lane = o.lane ?? defaultLane();
  let ownDir: string | undefined;
  let stack = o.stack;
  if (!stack) {
    ownDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-chaos-'));
    const ipBase = freeIpBase(50, 59);
    const logFile = path.join(ownDir, 'chaos.log');
    o.log(`starting a local cluster (pods on ${ipBase}.x, logs ${logFile})`);
    stack = await startShoalStack({ runDir: ownDir, name: `chaos${ipBase.split('.')[2]}`, ipBase, logger: createLogger({ component: 'test' }, undefined, logFile), signal, apiFaultProxy: true });
  }
  const k = kubeClients(stack.cluster.kubeconfig);
  let namespace: string | undefined;
  let failed = false;
  const frozen = new Set<number>();
  try {
    namespace = await createNamespace(k.client, 'chaos', signal);
    const ns = namespace;
    await deployReplicaSet(k, { namespace: ns, cluster: 'chaos', name: RS, replicas: REPLICAS, lane, memtxMemoryMB: MEMTX_MEMORY_MB });
    const first = await waitForReplicaSet(k, ns, RS, REPLICAS, { timeoutMs: 240_000, signal });
    const versions = await tarantoolVersions(k, ns, RS);
    const schedule = chaosSchedule({ seed: o.seed, durationS: o.minutes * 60 });
    o.log(`replica set ${ns}/${RS} up on Tarantool lane ${lane} (${Object.entries(versions).map(([p, v]) => `${p} ${v ?? 'version unknown'}`).join(', ')}; master ${first}); seed ${o.seed}, ${o.minutes} min, ${schedule.length} faults:\n${describeSchedule(schedule)}`);

    const obs = startObservedLoad({ stateFile: stack.cluster.stateFile, namespace: ns, replicaset: RS, replicas: REPLICAS, firstKey: 1, signal, sampleMs: SAMPLE_MS, readShare: READ_SHARE });
    const outcomes: FaultOutcome[] = [];
    const t0 = Date.now();
    const target = { cluster: stack.cluster, k, namespace: ns, replicaset: RS, replicas: REPLICAS, mark: obs.mark, signal, frozen };
    for (const f of schedule) {
      const wait = t0 + f.atS * 1000 - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal });
      let r: FaultOutcome;
      try {
        r = await injectFault(target, f);
      } catch (err) {
        r = { fault: f, at: Date.now(), done: false, detail: `failed: ${errorMessage(err)}` };
      }
      outcomes.push(r);
      o.log(`t+${((r.at - t0) / 1000).toFixed(1)} s ${f.kind}: ${r.done ? '' : 'skipped: '}${r.detail}`);
    }
    const chaosEnd = Date.now();
    const chaosS = (chaosEnd - t0) / 1000;

    const violations: string[] = [];
    const foreign = Object.entries(versions).filter(([, v]) => v !== null && !versionMatchesLane(lane, v));
    if (foreign.length) violations.push(`not Tarantool ${lane}: ${foreign.map(([p, v]) => `${p} runs ${v ?? '?'}`).join(', ')}`);
    const bound = o.convergeBoundMs ?? 180_000;
    let convergeS: number | null = null;
    let master: string | undefined;
    try {
      master = await waitForReplicaSet(k, ns, RS, REPLICAS, { timeoutMs: bound, signal });
      convergeS = (Date.now() - chaosEnd) / 1000;
      o.log(`converged in ${convergeS.toFixed(1)} s: master ${master}, ${REPLICAS} pods Ready`);
    } catch (err) {
      if (signal.aborted) throw err;
      violations.push(`did not converge to one master with every pod Ready within ${bound / 1000} s: ${errorMessage(err)}`);
    }
    await sleep(3_000, undefined, { signal }); // a few writes on the settled set
    obs.mark('heal', 'checks start');
    const r = await obs.stop();
    // Every writer's keys, on every instance.
    const checks = await verifyAcknowledged(obs.mix.logs(), localPods(stack.cluster.stateFile, ns, RS, REPLICAS).map((p) => ({ name: p.pod, console: p.console })), { settleMs: 30_000, signal, keepKeys: true });
    const lostKeys = new Set(checks.flatMap((c) => c.missing));
    const unread = checks.filter((c) => c.error !== undefined).map((c) => `${c.name}: ${c.error ?? ''}`);
    if (lostKeys.size) violations.push(`${lostKeys.size} acknowledged writes missing (${checks.filter((c) => c.missing.length).map((c) => `${c.name} misses ${c.missing.length}, e.g. ${c.missing.slice(0, 5).join(',')}`).join('; ')})`);
    if (unread.length) violations.push(`could not read the acknowledged writes on ${unread.join('; ')}`);
    if (checks.length < REPLICAS) violations.push(`only ${checks.length} of ${REPLICAS} instances checked`);
    if (r.dualWritable.length) {
      const ex = r.dualWritable.slice(0, 3).map((s) => `${new Date(s.startedAt).toISOString()} ${s.writable.join('+')} (spread ${s.spreadMs.toFixed(0)} ms)`);
      violations.push(`${r.dualWritable.length} samples with two writable instances: ${ex.join('; ')}`);
    }
    // The same question from the write history: who acknowledged writes under which queue term.
    const terms = checkWriteTerms(obs.mix.logs());
    violations.push(...terms.violations.map((v) => `two writable instances (write history): ${v}`));
    if (lane !== '2.6' && terms.withoutTerm > 0) violations.push(`${terms.withoutTerm} acknowledged writes carry no synchronous queue term on Tarantool ${lane}: the write-history check is incomplete`);
    // The history: every writer's puts and gets, then the final state (the master's read) as gets.
    // A failure here is a violation (the run cannot claim linearizability), not a lost summary.
    const historyFile = o.history ?? path.join(ownDir ?? os.tmpdir(), `chaos-history-${o.seed}.jsonl`);
    let counts = countHistory([]);
    let linearizability: LinearizabilityResult;
    try {
      const logs = obs.mix.logs();
      const ops = historyOf(logs);
      const final = checks.find((c) => c.name === master && c.present) ?? checks.find((c) => c.present);
      // no spread: a history has hundreds of thousands of operations
      if (final?.present && final.readFrom !== undefined && final.readTo !== undefined) for (const op of finalReads(logs, final.present, final.readFrom, final.readTo, final.name)) ops.push(op);
      else violations.push('no instance could be read for the final state: the history ends without it');
      counts = countHistory(ops);
      await writeHistory(historyFile, ops);
      o.log(`history: ${ops.length} operations in ${historyFile}; checking linearizability (Porcupine)`);
      linearizability = await checkLinearizability(historyFile, historyFile.replace(/\.jsonl$/, '') + '.html', { signal });
    } catch (err) {
      if (signal.aborted) throw err;
      linearizability = { verdict: 'unknown', detail: `the history could not be written or checked: ${errorMessage(err)}`, history: historyFile };
    }
    o.log(`linearizability: ${linearizability.verdict}: ${linearizability.detail}`);
    if (linearizability.verdict === 'violated') violations.push(`history not linearizable (Porcupine): ${linearizability.detail}`);
    if (linearizability.verdict === 'unknown') violations.push(`linearizability not established: ${linearizability.detail}`);
    if (o.svg) {
      await writeTimelineSvg(o.svg, { title: `Chaos: seed ${o.seed}, ${o.minutes} min, ${outcomes.filter((x) => x.done).length} faults, Tarantool ${lane} (acknowledged writes per 100 ms, all writers)`, timeline: r.summary.timeline, events: r.events }, { data: true }).catch((err: unknown) =>
        o.log(`timeline not drawn: ${errorMessage(err)}`),
      );
    }
    const faults = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, { injected: 0, skipped: 0 }])) as ChaosSummary['faults'];
    for (const x of outcomes) faults[x.fault.kind][x.done ? 'injected' : 'skipped']++;
    failed = violations.length > 0;
    return {
      seed: o.seed,
      minutes: o.minutes,
      tarantool: { lane, image: tarantoolImage(lane), versions },
      chaosS,
      totalS: (Date.now() - started) / 1000,
      faults,
      apiProxy: stack.cluster.apiFaultProxy?.counts() ?? null,
      outcomes,
      writes: { attempted: r.summary.attempted, acknowledged: r.summary.acknowledged, failed: r.summary.failed, longestGapS: r.summary.longestGapMs / 1000 },
      longestGap: longestGapCause(r.summary.timeline, outcomes, t0),
      loads: r.summary.loads,
      lost: lostKeys.size,
      unread,
      samples: r.samples.length,
      sampleMs: SAMPLE_MS,
      dualWritableSamples: r.dualWritable.length,
      dualWritableHistory: { checked: terms.checked, terms: terms.terms.length, violations: terms.violations.length },
      history: { ...counts, file: historyFile },
      linearizability,
      convergeS,
      violations,
    };
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // Whatever a fault left behind (the run aborted mid-window): stopped agents continued, every rule removed.
    const healed = await healAll({ cluster: stack.cluster, frozen }).catch((err: unknown) => [`healAll failed: ${errorMessage(err)}`]);
    if (healed.length) o.log(`teardown: ${healed.join('; ')}`);
    if (namespace && o.stack) await deleteNamespace(k.client, namespace);
    if (!o.stack) {
      await stack.stop().catch((err: unknown) => o.log(`the local cluster did not stop cleanly: ${errorMessage(err)}`));
      if (ownDir && !failed && !o.keep) await rm(ownDir, { recursive: true, force: true });
      else if (ownDir) o.log(`run directory kept for inspection: ${ownDir}`);
    }
  }
}

/** The summary for people: faults by kind, writes, losses, dual-master samples, convergence, violations. */
export function formatSummary(s: ChaosSummary): string {
  const faults = Object.entries(s.faults)
    .map(([k, v]) => `    ${k.padEnd(24)} ${String(v.injected).padStart(4)} injected${v.skipped ? `, ${v.skipped} skipped` : ''}`)
    .join('\n');
  return [
    `chaos summary — seed ${s.seed}, ${s.minutes} min of faults (chaos phase ${s.chaosS.toFixed(0)} s, whole run ${s.totalS.toFixed(0)} s)`,
    `  Tarantool: lane ${s.tarantool.lane} (${s.tarantool.image}); ${Object.entries(s.tarantool.versions).map(([p, v]) => `${p} ${v ?? 'version not reported'}`).join(', ')}`,
    `  faults:\n${faults}`,
    s.apiProxy
      ? `  API fault proxy: ${s.apiProxy.error} × 500, ${s.apiProxy.conflict} × 409, ${s.apiProxy.slow} slow, ${s.apiProxy.forwarded} forwarded as they came`
      : '  API fault proxy: none (the pods talked to the API server directly)',
    `  writes: ${s.writes.attempted} attempted, ${s.writes.acknowledged} acknowledged, ${s.writes.failed} failed (not acknowledged), longest gap ${s.writes.longestGapS.toFixed(1)} s`,
    ...s.loads.map((l) => `    ${describeLoads([l])}`),
    s.longestGap
      ? `  longest stretch without an acknowledged write: ${s.longestGap.seconds.toFixed(1)} s (load t+${s.longestGap.fromS.toFixed(1)}–${s.longestGap.toS.toFixed(1)} s); faults just before or in it: ${s.longestGap.faults.join('; ') || 'none'}`
      : '  longest stretch without an acknowledged write: none',
    `  acknowledged writes lost: ${s.lost}`,
    `  samples (every instance's box.info every ${s.sampleMs} ms): ${s.samples}, with two writable instances: ${s.dualWritableSamples}`,
    s.dualWritableHistory.checked > 0
      ? `  write history: ${s.dualWritableHistory.checked} acknowledged writes in ${s.dualWritableHistory.terms} synchronous queue terms, with two writable instances: ${s.dualWritableHistory.violations}`
      : '  write history: no synchronous queue terms (Tarantool 2.6.0 has none): checked by the samples only',
    `  history: ${s.history.puts} puts, ${s.history.gets} gets (final reads included); ${s.history.ok} ok, ${s.history.failed} failed (puts refused or never sent, gets unanswered: left out), ${s.history.unknown} puts of unknown outcome (${s.history.file})`,
    `  linearizability (Porcupine): ${s.linearizability.verdict.toUpperCase()} — ${s.linearizability.detail}${s.linearizability.html ? ` (see ${s.linearizability.html})` : ''}`,
    `  converged after the last fault: ${s.convergeS === null ? 'NO' : `${s.convergeS.toFixed(1)} s`}`,
    s.violations.length ? `  VIOLATIONS:\n${s.violations.map((v) => `    - ${v}`).join('\n')}` : '  violations: none',
  ].join('\n');
}

