// What a module graph costs in resident memory, without a cluster: a fresh `node [flags]` imports
// each given module (paths relative to the repository, e.g. dist/agent/start.js, or package names),
// idles, and reports its VmRSS; repeated and reported as the median, next to a bare `node [flags]`.
//   npx tsx tools/import-rss.ts [--runs N] [--settle-ms MS] [--churn-ms MS] [--flags "--max-semi-space-size=1 …"] MODULE…
// --churn-ms makes short-lived garbage for that long after the imports (a busy agent's young generation).
// A development aid for the agent's memory budget (issue 16); the real figure is `npm run bench --
// --only "agent idle RSS"`, which measures the running agents of a settled replica set.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The child: import, let the event loop settle, then report VmRSS and the heap (MB). */
function childScript(modules: readonly string[], settleMs: number, churnMs: number): string {
  const urls = modules.map((m) => (m.startsWith('.') || m.startsWith('/') || m.startsWith('dist/') ? pathToFileURL(path.resolve(m)).href : m));
  return [
    `for (const m of ${JSON.stringify(urls)}) await import(m);`,
    // Short-lived garbage for a while, in 10 ms slices between timer turns (as an agent's rounds make):
    // it lets the young generation grow as it would in a busy agent.
    `const end = Date.now() + ${churnMs};`,
    `while (Date.now() < end) { const t = Date.now() + 10; while (Date.now() < t) JSON.parse(JSON.stringify({ a: Array.from({ length: 50 }, (_, i) => ({ i, s: 'x'.repeat(i) })) })); await new Promise((r) => setTimeout(r, 5)); }`,
    `await new Promise((r) => setTimeout(r, ${settleMs}));`,
    `const s = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');`,
    `const kb = (k) => Number(new RegExp('^' + k + ':\\\\s+(\\\\d+)', 'm').exec(s)[1]) / 1024;`,
    `const u = process.memoryUsage();`,
    `console.log(JSON.stringify({ rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), heapTotal: u.heapTotal / 1048576, heapUsed: u.heapUsed / 1048576 }));`,
  ].join('\n');
}

interface Sample {
  rss: number;
  /** Private memory (heap, malloc, stacks) and pages of mapped files (the node binary's code, shared). */
  anon: number;
  file: number;
  heapTotal: number;
  heapUsed: number;
}

function sample(flags: readonly string[], modules: readonly string[], settleMs: number, churnMs: number): Sample {
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', childScript(modules, settleMs, churnMs)], { encoding: 'utf8' });
  return JSON.parse(out) as Sample;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

function main(argv: readonly string[]): void {
  let runs = 5;
  let flags: string[] = [];
  let settleMs = 1000;
  let churnMs = 0;
  const modules: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--flags') flags = (argv[++i] ?? '').split(/\s+/).filter(Boolean);
    else if (a === '--settle-ms') settleMs = Number(argv[++i]);
    else if (a === '--churn-ms') churnMs = Number(argv[++i]);
    else modules.push(a);
  }
  const row = (label: string, mods: readonly string[]): void => {
    const ss = Array.from({ length: runs }, () => sample(flags, mods, settleMs, churnMs));
    const f = (k: keyof Sample): string => median(ss.map((s) => s[k])).toFixed(1).padStart(6);
    process.stdout.write(`${label.padEnd(40)} rss ${f('rss')} MB (anon ${f('anon')}, file ${f('file')})  heap total ${f('heapTotal')}  used ${f('heapUsed')}  (median of ${runs})\n`);
  };
  process.stdout.write(`node ${process.version} ${flags.join(' ')}${churnMs ? ` (${churnMs} ms of garbage after the imports)` : ''}\n`);
  row('bare node', []);
  for (const m of modules) row(m, [m]);
  if (modules.length > 1) row('all of them', modules);
}

main(process.argv.slice(2));
