// What a benchmark module is and what it reports. One file per benchmark exports a Benchmark;
// benchmarks.ts lists them; run.ts runs them, prints the table and writes bench/results.json.
import type { TarantoolLane } from '../demo/tarantool-binaries.js';
import type { Stats } from './stats.js';

/** A figure a benchmark reports: declared up front so a failed or skipped run can still name it. */
export interface FigureSpec {
  name: string;
  unit: string;
  /** One line: what exactly is measured, from when to when. */
  what?: string;
}

/** The same measurement of the baseline SPEC names (e.g. a no-op HTTPS handler), from the same run. */
export interface Baseline extends Stats {
  name: string;
}

export interface MeasuredFigure extends FigureSpec, Stats {
  status: 'measured';
  baseline?: Baseline;
  /** figure ÷ baseline, per statistic. */
  ratio?: { median: number; p99?: number };
  /** What the reader should know: conditions, caveats, the expected value. */
  note?: string;
}

/** Reported instead of a number whenever a figure cannot be measured (yet): never invent one. */
export interface UnmeasuredFigure extends FigureSpec {
  status: 'not measured';
  why: string;
}

export type Figure = MeasuredFigure | UnmeasuredFigure;

export interface BenchContext {
  /** A short run for CI smoke use: fewer requests and runs. */
  quick: boolean;
  /** The Tarantool the run measures (`--tarantool`): the pods' image and the standalone Tarantool's binary. */
  lane: TarantoolLane;
  /** Aborted at the benchmark's time budget or on Ctrl-C: stop, clean up, return what you have. */
  signal: AbortSignal;
  /** Progress lines for the person watching (stderr). */
  log(message: string): void;
}

export interface Benchmark {
  name: string;
  figures: FigureSpec[];
  /** Time budget; the runner aborts ctx.signal when it is spent. Defaults in run.ts. */
  budgetMs?: { quick: number; full: number };
  /** Cleans up everything it started, also when it throws or ctx.signal aborts. */
  run(ctx: BenchContext): Promise<Figure[]>;
}

export function notMeasured(spec: FigureSpec, why: string): UnmeasuredFigure {
  return { ...spec, status: 'not measured', why };
}

/** A slot for figures nobody measures yet: reports each as not measured, with the reason. */
export function slot(name: string, figures: FigureSpec[], why: string): Benchmark {
  return { name, figures, run: async () => figures.map((f) => notMeasured(f, why)) };
}
