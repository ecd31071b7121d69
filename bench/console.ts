// Console round trips against a real standalone Tarantool of the run's lane (`--tarantool`; on 2.6
// TARANTOOL.md measured about 0.65 ms per raw round trip): the agent's control path. Part of
// `npm run bench`; also runs alone (lane from SHOAL_TARANTOOL_LANE, default 3) and prints its own
// table:   npx tsx bench/console.ts [--n 5000] [--json FILE]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleClient } from '../agent/console/client.js';
import { installShoalLua, luaPathFor } from '../agent/lua/module.js';
import { defaultLane, tarantoolBinary, type TarantoolLane } from '../demo/tarantool-binaries.js';
import { seenVersions } from './cluster.js';
import { stats } from './stats.js';
import type { Benchmark, Figure, FigureSpec, MeasuredFigure } from './types.js';

const FIGURES = {
  raw: { name: 'console round trip, raw line', unit: 'ms', what: "one 'return 1' line and its YAML reply" },
  eval: { name: 'console eval round trip', unit: 'ms', what: "ConsoleClient.eval('return 1'): envelope, JSON, pcall" },
  status: { name: "console eval shoal.status()", unit: 'ms', what: 'the call the agent makes most' },
  queued: { name: 'console queued eval, per call', unit: 'ms', what: 'a batch of concurrent evals through the one connection, total ÷ count; runs = batches' },
} satisfies Record<string, FigureSpec>;

export const consoleBenchmark: Benchmark = {
  name: 'console',
  figures: Object.values(FIGURES),
  budgetMs: { quick: 120_000, full: 300_000 },
  run: (ctx) => measureConsole(ctx.quick ? 500 : 5000, ctx.lane, ctx.signal, ctx.log),
};

/** Starts a configured standalone Tarantool of `lane`, measures n calls of each kind, stops it. */
export async function measureConsole(n: number, lane: TarantoolLane, signal: AbortSignal, log: (m: string) => void = () => undefined): Promise<Figure[]> {
  const t = await startTarantool(tarantoolBinary(lane));
  const client = new ConsoleClient({ socketPath: t.socket, timeoutMs: 30_000 });
  try {
    await client.connect({ timeoutMs: 30_000, signal });
    await client.eval("return require('shoal').configure({}, {})", [], { signal });
    const until = Date.now() + 30_000;
    while ((await client.eval("return require('shoal').status().phase", [], { signal })) !== 'configured') {
      if (Date.now() > until) throw new Error('Tarantool was not configured within 30 s');
      await sleep(10, undefined, { signal });
    }
    const version = String(await client.eval('return _TARANTOOL'));
    seenVersions.set('console benchmark (standalone)', version);
    log(`console: ${n} calls of each kind against Tarantool ${version}`);
    const figures: Figure[] = [
      await measure(FIGURES.raw, n, signal, () => client.request('return 1', { signal })),
      await measure(FIGURES.eval, n, signal, () => client.eval('return 1', [], { signal })),
      await measure(FIGURES.status, n, signal, () => client.eval("return require('shoal').status()", [], { signal })),
    ];
    const perCall: number[] = [];
    const batch = Math.max(100, Math.floor(n / 5));
    for (let b = 0; b < 5; b++) {
      signal.throwIfAborted();
      const started = performance.now();
      // No signal per call: a batch would hang hundreds of listeners on it. The client's deadline bounds each.
      await Promise.all(Array.from({ length: batch }, () => client.eval('return 1')));
      perCall.push((performance.now() - started) / batch);
    }
    figures.push({ ...FIGURES.queued, status: 'measured', ...stats(perCall), note: `${batch} evals per batch` });
    return figures;
  } finally {
    await client.close();
    await t.stop();
  }
}

async function measure(spec: FigureSpec, n: number, signal: AbortSignal, call: () => Promise<unknown>): Promise<MeasuredFigure> {
  for (let i = 0; i < Math.min(500, n); i++) await call(); // warm-up: JIT on both sides
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) signal.throwIfAborted();
    const t = performance.now();
    await call();
    samples.push(performance.now() - t);
  }
  return { ...spec, status: 'measured', ...stats(samples, true) };
}

interface Standalone {
  socket: string;
  stop(): Promise<void>;
}

/** A Tarantool with shoal.lua in a temp dir, not configured yet; stop() kills it and removes the dir. */
async function startTarantool(binary: string): Promise<Standalone> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-'));
  const runDir = join(dir, 'run');
  const socket = join(runDir, 'console.sock');
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      const bound = new AbortController();
      await Promise.race([exited, sleep(10_000, undefined, { signal: bound.signal }).catch(() => undefined)]);
      bound.abort();
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await installShoalLua(runDir);
    await writeFile(join(dir, 'init.lua'), `require('shoal').cfg({memtx_memory = 64 * 1024 * 1024, work_dir = ${JSON.stringify(dir)}})\n`);
    const log = await open(join(dir, 'tarantool.log'), 'a');
    try {
      child = spawn(binary, [join(dir, 'init.lua')], {
        cwd: dir,
        env: { ...process.env, LUA_PATH: luaPathFor(runDir), SHOAL_CONSOLE_SOCKET: socket },
        stdio: ['ignore', log.fd, log.fd],
      });
    } finally {
      await log.close();
    }
    child.once('error', () => undefined); // ENOENT shows up as a failed connect, with the reason logged by the runner
    return { socket, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const figures = await measureConsole(Number(arg('--n') ?? 5000), defaultLane(), new AbortController().signal, (m) => console.error(m));
  console.log('call                               median ms   p99 ms    max ms');
  for (const f of figures) {
    if (f.status !== 'measured') continue;
    console.log(`${f.name.padEnd(35)}${f.median.toFixed(3).padStart(9)}${(f.p99 ?? NaN).toFixed(3).padStart(9)}${f.max.toFixed(3).padStart(10)}`);
  }
  const out = arg('--json');
  if (out) await writeFile(out, JSON.stringify({ console: figures }, null, 2) + '\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
