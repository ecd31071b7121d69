// Micro-benchmark of console round trips against a real Tarantool 2.6 (TARANTOOL.md measured
// about 0.65 ms per raw round trip). Prints a table with the medians; `--json FILE` also writes
// the numbers for `npm run bench`.   npx tsx bench/console.ts [--n 5000] [--json FILE]
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleClient } from '../agent/console/client.js';
import { installShoalLua, luaPathFor } from '../agent/lua/module.js';

interface Result {
  name: string;
  n: number;
  medianMs: number;
  p99Ms: number;
  meanMs: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function measure(name: string, n: number, call: () => Promise<unknown>): Promise<Result> {
  for (let i = 0; i < Math.min(500, n); i++) await call(); // warm-up: JIT on both sides
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { name, n, medianMs: at(0.5), p99Ms: at(0.99), meanMs: samples.reduce((s, x) => s + x, 0) / n };
}

async function main(): Promise<void> {
  const n = Number(arg('--n') ?? 5000);
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-'));
  const runDir = join(dir, 'run');
  const socket = join(runDir, 'console.sock');
  await installShoalLua(runDir);
  await writeFile(join(dir, 'init.lua'), `require('shoal').cfg({memtx_memory = 64 * 1024 * 1024, work_dir = ${JSON.stringify(dir)}})\n`);
  const log = await open(join(dir, 'tarantool.log'), 'a');
  const child = spawn('tarantool', [join(dir, 'init.lua')], {
    cwd: dir,
    env: { ...process.env, LUA_PATH: luaPathFor(runDir), SHOAL_CONSOLE_SOCKET: socket },
    stdio: ['ignore', log.fd, log.fd],
  });
  await log.close();
  const client = new ConsoleClient({ socketPath: socket, timeoutMs: 30_000 });
  try {
    await client.connect({ timeoutMs: 30_000 });
    await client.eval("return require('shoal').configure({}, {})");
    for (let i = 0; i < 500; i++) {
      const s = (await client.eval("return require('shoal').status().phase")) as string;
      if (s === 'configured') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const results = [
      await measure('raw line (return 1)', n, () => client.request('return 1')),
      await measure('eval envelope (return 1)', n, () => client.eval('return 1')),
      await measure("eval shoal.status()", n, () => client.eval("return require('shoal').status()")),
    ];
    const concurrent = performance.now();
    await Promise.all(Array.from({ length: n }, () => client.eval('return 1')));
    const perCallQueued = (performance.now() - concurrent) / n;

    console.log(`console round trips against Tarantool ${String(await client.eval('return _TARANTOOL'))}, ${n} sequential calls each`);
    console.log('call                          median ms   p99 ms   mean ms');
    for (const r of results) {
      console.log(`${r.name.padEnd(30)}${r.medianMs.toFixed(3).padStart(9)}${r.p99Ms.toFixed(3).padStart(9)}${r.meanMs.toFixed(3).padStart(10)}`);
    }
    console.log(`${n} concurrent evals (queued, one in flight): ${perCallQueued.toFixed(3)} ms per call`);
    const out = arg('--json');
    if (out) await writeFile(out, JSON.stringify({ console: { results, concurrentPerCallMs: perCallQueued } }, null, 2) + '\n');
  } finally {
    await client.close();
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
