// `npm run bench [-- --quick] [--tarantool 3|2.6] [--only NAME,…] [--out FILE]`: runs every benchmark of benchmarks.ts
// one after the other, each within its time budget, prints the table and writes bench/results.json.
// It reports, it does not judge: a slow machine gets slow numbers, a benchmark that fails or runs
// out of time gets its figures marked "not measured" with the reason, and the exit code stays 0.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../common/errors.js';
import { parseLane, tarantoolBinary, tarantoolImage, versionMatchesLane, type TarantoolLane } from '../demo/tarantool-binaries.js';
import { VERSION } from '../common/version.js';
import { BENCHMARKS } from './benchmarks.js';
import { seenVersions, stopBenchCluster } from './cluster.js';
import { table, writeResults, type BenchmarkOutcome, type TarantoolRecord } from './report.js';
import { runBenchmark } from './runner.js';
import type { Figure } from './types.js';

const USAGE = `usage: npm run bench [-- --quick] [--tarantool 3|2.6] [--only NAME[,NAME…]] [--out FILE]
  --quick      a short run for CI smoke use (fewer requests and runs)
  --tarantool  the Tarantool the pods and the standalone console benchmark run: 3 (3.8.0, the default) or 2.6 (Debian's 2.6.0)
  --only       run only the benchmarks whose name contains one of these (${BENCHMARKS.map((b) => b.name).join(', ')})
  --out        where to write the JSON results (default bench/results.json)`;

interface Args {
  quick: boolean;
  lane: TarantoolLane;
  only: string[];
  out: string;
}

function args(): Args {
  try {
    const { values } = parseArgs({
      options: { quick: { type: 'boolean' }, tarantool: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      console.log(USAGE);
      process.exit(0);
    }
    return {
      quick: values.quick === true,
      lane: parseLane(values.tarantool ?? '3', '--tarantool'),
      only: (values.only ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      out: resolve(values.out ?? 'bench/results.json'),
    };
  } catch (err) {
    console.error(`${errorMessage(err)}\n${USAGE}`);
    process.exit(2);
  }
}

const progress = (m: string): void => void process.stderr.write(`[bench] ${m}\n`);

function machine(binary: string): Record<string, unknown> {
  const tarantool = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryMB: Math.round(totalmem() / 2 ** 20),
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    tarantool: tarantool.stdout?.split('\n')[0] || `not found (${errorMessage(tarantool.error ?? 'no output')})`,
  };
}

/** The lane asked for, what it runs, and the version every instance the benchmarks used reported. */
function tarantoolRecord(lane: TarantoolLane, binary: string, binaryVersion: string): TarantoolRecord {
  const versions = Object.fromEntries([...seenVersions].sort(([a], [b]) => a.localeCompare(b)));
  const mismatched = Object.entries(versions).flatMap(([where, v]) => (v !== null && !versionMatchesLane(lane, v) ? [`${where} runs ${v}`] : []));
  return { lane, image: tarantoolImage(lane), binary, binaryVersion, versions, mismatched };
}

/** Names what still holds the event loop (should be nothing but stdio) and makes sure the process ends. */
async function checkLeftovers(): Promise<void> {
  await sleep(200); // file handles of the last write close a few ticks later
  const left = process.getActiveResourcesInfo().filter((r) => !['TTYWrap', 'PipeWrap', 'FSReqCallback'].includes(r));
  if (left.length === 0) return;
  progress(`warning: still open after the run: ${left.join(', ')} — a benchmark did not clean up; exiting anyway`);
  setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
}

async function main(): Promise<void> {
  const a = args();
  const selected = a.only.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => a.only.some((o) => b.name.includes(o)));
  if (selected.length === 0) {
    console.error(`no benchmark matches --only ${a.only.join(',')}\n${USAGE}`);
    process.exit(2);
  }
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) process.exit(130);
    progress(`${sig}: stopping the current benchmark and cleaning up (again to quit at once)`);
    interrupt.abort(new Error(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let binary: string;
  try {
    binary = tarantoolBinary(a.lane);
  } catch (err) {
    console.error(`no Tarantool for --tarantool ${a.lane}: ${errorMessage(err)}`);
    process.exit(2);
  }
  const startedAt = new Date().toISOString();
  const info = machine(binary);
  progress(`${a.quick ? 'quick' : 'full'} run of ${selected.map((b) => b.name).join(', ')} on Tarantool lane ${a.lane} (${String(info.tarantool)}), ${String(info.cpus)} CPUs, load ${JSON.stringify(info.loadavgAtStart)}`);
  const figures: Figure[] = [];
  const outcomes: BenchmarkOutcome[] = [];
  for (const b of selected) {
    const r = await runBenchmark(b, { quick: a.quick, lane: a.lane, interrupted: interrupt.signal, log: progress });
    figures.push(...r.figures);
    outcomes.push(r.outcome);
  }
  // The cluster the cluster benchmarks shared: every process of it stopped, kept on disk after a failure.
  const failed = outcomes.some((o) => o.outcome !== 'ok');
  const kept = await stopBenchCluster(failed).catch((err: unknown) => {
    progress(`warning: the local cluster did not stop cleanly: ${errorMessage(err)}`);
    return undefined;
  });
  if (kept) progress(`a benchmark did not finish: the local cluster's run directory is kept at ${kept}`);
  const tarantool = tarantoolRecord(a.lane, binary, String(info.tarantool));
  if (tarantool.mismatched.length) progress(`warning: not Tarantool ${a.lane}: ${tarantool.mismatched.join(', ')}`);
  const results = {
    shoal: VERSION,
    startedAt,
    finishedAt: new Date().toISOString(),
    quick: a.quick,
    tarantool,
    machine: { ...info, loadavgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
    figures,
    benchmarks: outcomes,
  };
  const versions = [...new Set(Object.values(tarantool.versions).filter((v): v is string => v !== null))];
  console.log(
    `\nShoal ${VERSION} benchmarks (${a.quick ? 'quick' : 'full'} run, Tarantool lane ${a.lane}: ${versions.length ? versions.join(', ') : 'no instance reported a version'}, ${String(info.cpus)} CPUs, load average at start ${JSON.stringify(info.loadavgAtStart)})\n`,
  );
  console.log(table(figures));
  await writeResults(a.out, results);
  console.log(`\nresults: ${a.out}`);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await checkLeftovers();
}

await main();
