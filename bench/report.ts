// The human table and bench/results.json.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Figure } from './types.js';

export interface BenchmarkOutcome {
  name: string;
  ms: number;
  outcome: 'ok' | 'failed' | 'out of time' | 'interrupted';
  error?: string;
}

/** Which Tarantool a run measured: the lane asked for (`--tarantool`) and what really ran. */
export interface TarantoolRecord {
  lane: string;
  /** The image tag of the pods (the process kubelet maps it to the binary). */
  image: string;
  /** The binary of the lane on this machine and its `--version` line. */
  binary: string;
  binaryVersion: string;
  /** box.info.version by where it ran: `<replica set>/<pod>` (agents' /status) or the standalone console Tarantool; null = not reported. */
  versions: Record<string, string | null>;
  /** Instances whose version is not of the lane (should be empty). */
  mismatched: string[];
}

export interface Results {
  shoal: string;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  tarantool: TarantoolRecord;
  machine: Record<string, unknown>;
  figures: Figure[];
  benchmarks: BenchmarkOutcome[];
}

const num = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3));

/** A plain-text table, one figure a line; a figure not measured says why instead of numbers. */
export function table(figures: readonly Figure[]): string {
  const rows: string[][] = [['figure', 'unit', 'runs', 'median', 'p99', 'max', 'baseline median / p99', 'ratio median / p99']];
  const notes: string[] = [];
  for (const f of figures) {
    if (f.status === 'not measured') {
      rows.push([f.name, f.unit, 'not measured (see below)']);
      notes.push(`${f.name}: not measured: ${f.why}`);
      continue;
    }
    const b = f.baseline;
    rows.push([
      f.name,
      f.unit,
      String(f.runs),
      num(f.median),
      num(f.p99),
      num(f.max),
      b ? `${num(b.median)} / ${num(b.p99)}  (${b.name})` : '',
      f.ratio ? `${f.ratio.median.toFixed(2)} / ${f.ratio.p99?.toFixed(2) ?? '-'}` : '',
    ]);
    if (f.note) notes.push(`${f.name}: ${f.note}`);
  }
  const widths = [0, 1, 2, 3, 4, 5].map((c) => Math.max(...rows.filter((r) => c < 2 || r.length > 3).map((r) => (r[c] ?? '').length)));
  const right = new Set([2, 3, 4, 5]);
  const lines = rows.map((r) => {
    if (r.length <= 3) return `${(r[0] ?? '').padEnd(widths[0] ?? 0)}  ${(r[1] ?? '').padEnd(widths[1] ?? 0)}  ${r[2] ?? ''}`;
    return r
      .map((cell, c) => (c >= 6 ? cell : right.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  });
  return [...lines, '', ...notes.map((n) => `- ${n}`)].join('\n');
}

/** Writes the results atomically (a reader never sees half a file). */
export async function writeResults(path: string, results: Results): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(results, null, 2) + '\n');
  await rename(tmp, path);
}
