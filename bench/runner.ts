// Runs one benchmark within its time budget and turns whatever happens into figures: what it
// measured, and "not measured" with the reason for every declared figure it did not report.
import { abortAfter } from '../common/abort.js';
import type { TarantoolLane } from '../demo/tarantool-binaries.js';
import { errorMessage } from '../common/errors.js';
import type { BenchmarkOutcome } from './report.js';
import { notMeasured, type Benchmark, type Figure } from './types.js';

const DEFAULT_BUDGET = { quick: 120_000, full: 600_000 };
/** How long a benchmark may take to stop after its budget is spent before the run moves on without it. */
const STOP_GRACE_MS = 60_000;

class OutOfTime extends Error {
  constructor(ms: number) {
    super(`its budget of ${ms / 1000} s is spent`);
    this.name = 'OutOfTime';
  }
}

class Stuck extends Error {
  constructor() {
    super(`did not stop within ${STOP_GRACE_MS / 1000} s after its budget; its processes may be left running`);
    this.name = 'Stuck';
  }
}

export interface RunOptions {
  quick: boolean;
  lane: TarantoolLane;
  /** Ctrl-C: the benchmark running stops, the ones after it do not start. */
  interrupted: AbortSignal;
  log(message: string): void;
}

export interface RunResult {
  figures: Figure[];
  outcome: BenchmarkOutcome;
}

/** Runs `b` within its budget; never throws. Not started at all once `interrupted` fired. */
export async function runBenchmark(b: Benchmark, o: RunOptions): Promise<RunResult> {
  const budget = (o.quick ? b.budgetMs?.quick : b.budgetMs?.full) ?? (o.quick ? DEFAULT_BUDGET.quick : DEFAULT_BUDGET.full);
  const started = performance.now();
  let figures: Figure[] = [];
  let outcome: BenchmarkOutcome['outcome'] = 'ok';
  let error: string | undefined;
  if (o.interrupted.aborted) {
    outcome = 'interrupted';
    error = 'not started';
  } else {
    const bound = abortAfter(budget, () => new OutOfTime(budget), o.interrupted);
    let grace: NodeJS.Timeout | undefined;
    try {
      o.log(`${b.name}: running (budget ${Math.round(budget / 1000)} s)`);
      const run = b.run({ quick: o.quick, lane: o.lane, signal: bound.signal, log: o.log });
      run.catch(() => undefined);
      // A benchmark that ignores its signal must not hold the whole run hostage.
      const stuck = new Promise<never>((_, reject) => {
        const arm = (): void => {
          grace = setTimeout(() => reject(new Stuck()), STOP_GRACE_MS);
        };
        if (bound.signal.aborted) arm();
        else bound.signal.addEventListener('abort', arm, { once: true });
      });
      figures = await Promise.race([run, stuck]);
    } catch (err) {
      const reason: unknown = bound.signal.reason;
      outcome = o.interrupted.aborted ? 'interrupted' : reason instanceof OutOfTime ? 'out of time' : 'failed';
      // Aborted: the reason says more than whatever the benchmark threw on its way out.
      error = err instanceof Stuck || outcome === 'failed' ? errorMessage(err) : errorMessage(reason);
    } finally {
      clearTimeout(grace);
      bound.unlink();
    }
  }
  // Every declared figure appears once: what the run did not report is "not measured", with why.
  const why = error ? `${outcome}: ${error}` : 'the benchmark did not report it';
  const complete = b.figures.map((spec) => figures.find((f) => f.name === spec.name) ?? notMeasured(spec, why));
  const extra = figures.filter((f) => !b.figures.some((s) => s.name === f.name));
  const ms = Math.round(performance.now() - started);
  o.log(`${b.name}: ${outcome}${error ? ` (${error})` : ''} in ${(ms / 1000).toFixed(1)} s`);
  return { figures: [...complete, ...extra], outcome: { name: b.name, ms, outcome, ...(error ? { error } : {}) } };
}
