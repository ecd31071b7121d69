// Acknowledged writes lost (SPEC §7; must be 0): the tally of the writes, failover and rolling-restart
// benchmarks (every writer of their write mixes), whose every acknowledged write is looked for on every instance once the set settles.
import { lostTally } from './cluster.js';
import type { Benchmark, FigureSpec } from './types.js';

const FIGURE: FigureSpec = { name: 'acknowledged writes lost', unit: 'writes', what: 'acknowledged writes missing on any instance after the steady-write, failover and rolling-restart runs (must be 0)' };

export const lostWritesBenchmark: Benchmark = {
  name: 'lost writes',
  figures: [FIGURE],
  async run() {
    if (lostTally.runs.length === 0) throw new Error('no write load was checked (run it with writes, failover and/or rolling restart)');
    // "0 lost" of nothing checked would read as a pass.
    if (lostTally.checked === 0) throw new Error(`no write was acknowledged in ${lostTally.runs.join(', ')}: nothing to check`);
    const unread = lostTally.unread.length ? `; instances not read: ${lostTally.unread.join(', ')}` : '';
    return [
      {
        ...FIGURE,
        status: 'measured',
        runs: lostTally.runs.length,
        median: lostTally.lost,
        max: lostTally.lost,
        note: `${lostTally.lost} of ${lostTally.checked} acknowledged writes missing, checked after: ${lostTally.runs.join(', ')}${unread}`,
      },
    ];
  },
};
