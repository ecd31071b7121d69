// `npm run chaos -- --minutes N --seed S [--tarantool 3|2.6] [--svg FILE] [--json FILE] [--history FILE]`: one local
// cluster, one chaos run (run.ts), the summary printed; the operation history (JSON lines, checked by
// Porcupine) beside the summary; exit code 1 on any violation, 2 on bad arguments or a run that could
// not be carried out.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseLane, tarantoolBinary, type TarantoolLane } from '../../demo/tarantool-binaries.js';
import { errorMessage } from '../../common/errors.js';
import { formatSummary, runChaos } from './run.js';

const USAGE = 'usage: npm run chaos -- [--minutes N (default 5)] [--seed S (default: time-based, printed)] [--tarantool 3|2.6 (default 3: 3.8.0; 2.6: Debian\'s 2.6.0)] [--svg FILE (default bench/chaos.svg)] [--json FILE] [--history FILE (default: beside --json, else bench/chaos-history.jsonl)] [--keep (keep the run directory: every pod log)]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { minutes: { type: 'string' }, seed: { type: 'string' }, tarantool: { type: 'string' }, svg: { type: 'string' }, json: { type: 'string' }, history: { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    console.error(`${errorMessage(err)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const minutes = Number(values.minutes ?? '5');
  const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
  if (!(minutes > 0) || !Number.isInteger(seed)) {
    console.error(`--minutes must be > 0 and --seed an integer\n${USAGE}`);
    return 2;
  }
  let lane: TarantoolLane;
  try {
    lane = parseLane(values.tarantool ?? '3', '--tarantool');
    tarantoolBinary(lane); // missing binary: say so now, not as pods that never start
  } catch (err) {
    console.error(`${errorMessage(err)}\n${USAGE}`);
    return 2;
  }
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const log = (m: string): void => void process.stderr.write(`[chaos] ${m}\n`);
  log(`seed ${seed}, Tarantool lane ${lane} (rerun the same schedule with --seed ${seed} --tarantool ${lane})`);
  try {
    const history = resolve(values.history ?? (values.json ? values.json.replace(/(\.json)?$/, '-history.jsonl') : 'bench/chaos-history.jsonl'));
    const s = await runChaos({ minutes, seed, lane, svg: resolve(values.svg ?? 'bench/chaos.svg'), history, log, signal: interrupt.signal, keep: values.keep === true });
    console.log(`\n${formatSummary(s)}`);
    if (values.json) await writeFile(resolve(values.json), JSON.stringify(s, null, 2) + '\n');
    return s.violations.length ? 1 : 0;
  } catch (err) {
    console.error(`chaos run not completed: ${errorMessage(err)}`);
    return 2;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

process.exitCode = await main();
