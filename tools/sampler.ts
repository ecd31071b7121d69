// Samples box.info (ro, status, id, vclock) of every instance of one replica set at a fixed
// interval through their admin consoles, to check "never two writable instances at once".
//
// A sample is NOT instantaneous: the instances are asked concurrently (one console connection
// each), and each answer describes its instance at some moment between the request (sentAt) and
// the reply (receivedAt). Each sample records that window (startedAt … endedAt) and, from the
// instances' own clocks, when each read box.info (observedAt; the spread is meaningful only when
// they share a clock, as on one machine). Consequences for readers:
//  - two instances writable in one sample were each writable within the window, not necessarily
//    at the same instant: a hand-over faster than the window can show up as a dual-writable sample;
//    look at spreadMs before calling it a split brain;
//  - a dual-writable period shorter than the interval can fall between samples and be missed.
// An instance that does not answer (dead, hung past probeTimeoutMs, not configured) is "unknown":
// never counted as writable.
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleClient } from '../agent/console/client.js';
import { LuaError } from '../agent/console/errors.js';
import { decodeVclock } from '../agent/instance/state.js';
import type { Vclock } from '../agent/tarantool/vclock.js';

export interface SampledInstance {
  name: string;
  console: string;
}

export interface Observation {
  name: string;
  answered: boolean;
  ro?: boolean;
  status?: string;
  id?: number;
  vclock?: Vclock;
  /** ro === false and status === 'running'. */
  writable: boolean;
  /** Sampler clock (epoch ms): request sent, reply received. */
  sentAt: number;
  receivedAt: number;
  /** The instance's clock (epoch ms) when it read box.info. */
  observedAt?: number;
  error?: string;
}

export interface Sample {
  seq: number;
  /** The window in which every observation of this sample was made (sampler clock, epoch ms). */
  startedAt: number;
  endedAt: number;
  instances: Observation[];
  /** Names of the writable instances. */
  writable: string[];
  /** max − min observedAt of the instances that answered (0 with fewer than two answers). */
  spreadMs: number;
}

export interface SamplerOptions {
  /** The replica set's instances: a fixed list, or asked before every sample (pods come and go). */
  instances: readonly SampledInstance[] | (() => Promise<readonly SampledInstance[]>);
  /** A sample starts every intervalMs (or as soon as the previous one ended, when it took longer). */
  intervalMs: number;
  /** Bound of one instance's answer. Default max(500, 5 × intervalMs). */
  probeTimeoutMs?: number;
  /** Aborting stops the sampler (the sample in progress is dropped). */
  signal?: AbortSignal;
}

export interface Sampler {
  readonly samples: readonly Sample[];
  /** The samples in which two or more instances were writable. */
  dualWritableSamples(): Sample[];
  /** Finishes the sample in progress (bounded by probeTimeoutMs), closes every console, returns all samples. */
  stop(): Promise<Sample[]>;
}

const PROBE = `local i = box.info
local v = {}
for k, lsn in pairs(i.vclock) do v[tostring(k)] = lsn end
return {ro = i.ro, status = i.status, id = i.id, vclock = v, now = require('clock').realtime() * 1000}`;

const now = (): number => performance.timeOrigin + performance.now();

export function startSampler(o: SamplerOptions): Sampler {
  const samples: Sample[] = [];
  const stopping = new AbortController();
  const aborted = o.signal ?? new AbortController().signal;
  const wake = AbortSignal.any([stopping.signal, aborted]);
  const probeTimeoutMs = o.probeTimeoutMs ?? Math.max(500, 5 * o.intervalMs);
  const clients = new Map<string, ConsoleClient>();
  let known: readonly SampledInstance[] = [];

  const clientFor = async (inst: SampledInstance): Promise<ConsoleClient> => {
    const key = `${inst.name}\0${inst.console}`;
    let c = clients.get(key);
    if (!c) {
      // A pod recreated with a new console path gets a new client; the old one is closed.
      for (const [k, old] of clients) {
        if (k.startsWith(`${inst.name}\0`)) {
          clients.delete(k);
          await old.close();
        }
      }
      c = new ConsoleClient({ socketPath: inst.console, timeoutMs: probeTimeoutMs, connectAttemptMs: probeTimeoutMs });
      clients.set(key, c);
    }
    return c;
  };

  const probe = async (inst: SampledInstance): Promise<Observation> => {
    const client = await clientFor(inst);
    const sentAt = now();
    try {
      const r = await client.eval(PROBE, [], { timeoutMs: probeTimeoutMs, signal: aborted, failFast: true });
      return { ...decodeProbe(inst.name, r), sentAt, receivedAt: now() };
    } catch (err) {
      const error = err instanceof LuaError ? err.luaMessage : err instanceof Error ? err.message.split('\n')[0] : String(err);
      return { name: inst.name, answered: false, writable: false, sentAt, receivedAt: now(), error };
    }
  };

  const run = async (): Promise<void> => {
    for (let seq = 1; !wake.aborted; seq++) {
      const startedAt = now();
      try {
        known = typeof o.instances === 'function' ? await o.instances() : o.instances;
      } catch {
        // keep sampling the instances known last
      }
      const instances = await Promise.all(known.map(probe));
      if (aborted.aborted) break;
      const times = instances.flatMap((i) => (i.observedAt === undefined ? [] : [i.observedAt]));
      samples.push({
        seq,
        startedAt,
        endedAt: now(),
        instances,
        writable: instances.filter((i) => i.writable).map((i) => i.name),
        spreadMs: times.length > 1 ? Math.max(...times) - Math.min(...times) : 0,
      });
      const wait = startedAt + o.intervalMs - now();
      if (wait > 0) await sleep(wait, undefined, { signal: wake }).catch(() => undefined);
    }
  };
  const done = run().finally(async () => {
    await Promise.all([...clients.values()].map((c) => c.close()));
    clients.clear();
  });

  return {
    samples,
    dualWritableSamples: () => dualWritable(samples),
    async stop() {
      stopping.abort();
      await done;
      return samples;
    },
  };
}

/** The samples in which two or more instances were writable. */
export function dualWritable(samples: readonly Sample[]): Sample[] {
  return samples.filter((s) => s.writable.length >= 2);
}

function decodeProbe(name: string, r: unknown): Omit<Observation, 'sentAt' | 'receivedAt'> {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) {
    return { name, answered: false, writable: false, error: `unexpected box.info reply ${JSON.stringify(r)}` };
  }
  const v = r as Record<string, unknown>;
  const ro = typeof v['ro'] === 'boolean' ? v['ro'] : undefined;
  const status = typeof v['status'] === 'string' ? v['status'] : undefined;
  return {
    name,
    answered: true,
    ro,
    status,
    id: typeof v['id'] === 'number' ? v['id'] : undefined,
    vclock: decodeVclock(v['vclock']),
    writable: ro === false && status === 'running',
    observedAt: typeof v['now'] === 'number' ? v['now'] : undefined,
  };
}
