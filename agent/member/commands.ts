// The command executor every agent runs: a coordinator command (already term-checked by the mesh)
// is checked once more against the newest term this agent has acted on, its payload validated, and
// mapped onto LocalInstance. Operations run one at a time — except fence, which must never wait
// behind a slow join or a promote. A command is re-checked before every step it takes on the
// instance, because it may have waited in the queue or in a step while the world moved on: a newer
// term supersedes it, and a fence accepted after it supersedes anything that could make the
// instance writable (a promote of an old plan must never undo a fence). A superseded command stops
// (its steps' signal aborts) and is acked as refused. The ack carries the instance's state right
// after, so the coordinator's next round does not decide on an older heartbeat.
import { errorMessage } from '../../common/errors.js';
import { linkedAbort } from '../../common/abort.js';
import type { Logger } from '../../common/log.js';
import type { Bounded } from '../instance/deadline.js';
import type { BootstrapOptions, PromoteOptions, RebootstrapOptions, RebootstrapResult, ReconfigureOptions, MasterRef as InstanceMasterRef } from '../instance/local.js';
import type { InstanceState } from '../instance/state.js';
import type { Vclock } from '../tarantool/vclock.js';
import type { CommandContext, CommandResult } from '../mesh/mesh.js';
import type { CommandMessage, JsonObject, JsonValue } from '../wire/mesh-protocol.js';
import { decodeInstanceCommand, isInstanceCommandKind, type InstanceCommand } from '../wire/command-payload.js';
import { toTarantoolReport, type LocalSnapshot } from './probe.js';

/** What the executor needs from LocalInstance (a fake in unit tests). */
export interface ExecutorInstance {
  state(o: Bounded): Promise<InstanceState>;
  bootstrap(o: BootstrapOptions): Promise<InstanceState>;
  reconfigure(o: ReconfigureOptions): Promise<InstanceState>;
  fence(o: Bounded): Promise<InstanceState>;
  promote(o: PromoteOptions): Promise<InstanceState>;
  waitForVclock(target: Vclock, timeoutMs: number, signal?: AbortSignal): Promise<Vclock>;
  rebootstrap(o: RebootstrapOptions): Promise<RebootstrapResult>;
  expel(uuid: string, o: Bounded): Promise<{ deleted: boolean; id?: number }>;
  bootstrapBuckets(o: Bounded): Promise<{ found: boolean }>;
  findMasters(o: Bounded): Promise<void>;
}

export interface CommandExecutorOptions {
  instance: ExecutorInstance;
  /** This pod: commands addressed to another are refused. */
  self: string;
  logger: Logger;
  /** The newest term the mesh has accepted (mesh.highestTerm().term). */
  knownTerm: () => number;
  /** A fresh local snapshot, taken after each command for its ack. */
  refresh: () => Promise<LocalSnapshot>;
}

/** Handlers for command kinds that are not instance operations (the coordinator's own). */
export type ExtraHandler = (cmd: CommandMessage, ctx: CommandContext) => Promise<CommandResult>;

/** Commands that can leave the instance writable: a fence accepted after one of them wins over it. */
const WRITE_ENABLING: ReadonlySet<InstanceCommand['kind']> = new Set(['promote', 'bootstrapMaster', 'reconfigure']);

/** Why a command may no longer take its next step; null = it may. Pure, for the step guard. */
export function supersededBy(o: { term: number; newestTerm: number; kind: InstanceCommand['kind']; fencesAtStart: number; fencesNow: number }): string | null {
  if (o.term < o.newestTerm) return `superseded: term ${o.newestTerm} began after this command of term ${o.term}`;
  if (o.kind !== 'fence' && WRITE_ENABLING.has(o.kind) && o.fencesNow !== o.fencesAtStart) return `superseded: a fence arrived after this ${o.kind}`;
  return null;
}

class Superseded extends Error {}

/** A command being carried out: what its step guard compares, and the stop for its steps. */
interface Running {
  term: number;
  kind: InstanceCommand['kind'];
  fencesAtStart: number;
  stop: AbortController;
}

export class CommandExecutor {
  private newestTerm = 0;
  /** Fences accepted so far (a counter, so a guard sees whether one came after its command). */
  private fences = 0;
  private readonly running = new Set<Running>();
  private serial: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: CommandExecutorOptions) {}

  /** The mesh's command handler. */
  async handle(cmd: CommandMessage, ctx: CommandContext): Promise<CommandResult> {
    const log = this.o.logger.child({ command: cmd.id, kind: cmd.kind, from: cmd.from, commandTerm: cmd.term });
    // The mesh refuses older terms already; a command that waited while a newer term arrived must not run either.
    const newest = Math.max(this.newestTerm, this.o.knownTerm());
    if (cmd.term < newest) {
      log.warn({ newest }, 'refused a command of an older term');
      return { ok: false, error: `refused: term ${cmd.term} is older than term ${newest}` };
    }
    if (!isInstanceCommandKind(cmd.kind)) return { ok: false, error: `unknown command kind ${cmd.kind}` };
    let c: InstanceCommand;
    try {
      c = decodeInstanceCommand(cmd.kind, cmd.payload);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'refused an invalid command');
      return { ok: false, error: errorMessage(err) };
    }
    if (c.pod !== this.o.self) return { ok: false, error: `command for ${c.pod} sent to ${this.o.self}` };
    this.newestTerm = Math.max(this.newestTerm, cmd.term);
    if (c.kind === 'fence') this.fences++;
    // Linked, not AbortSignal.any: ctx.signal lives as long as the mesh, and every any() would stay
    // attached to it until collected.
    const link = linkedAbort(ctx.signal);
    const mine: Running = { term: cmd.term, kind: c.kind, fencesAtStart: this.fences, stop: link.controller };
    this.supersedeOthers(mine, log);
    this.running.add(mine);
    const started = Date.now();
    const signal = link.signal;
    const run = (): Promise<JsonValue> => this.execute(c, signal, () => this.checkStep(mine));
    try {
      const detail = c.kind === 'fence' ? await run() : await this.queued(run);
      const snap = await this.o.refresh();
      log.info({ reason: c.reason, ms: Date.now() - started }, 'command applied');
      const result: JsonObject = { at: snap.at, tarantool: { ...toTarantoolReport(snap) }, detail };
      return { ok: true, result };
    } catch (err) {
      const superseded = err instanceof Superseded || (signal.aborted && signal.reason instanceof Superseded);
      const why = superseded && !(err instanceof Superseded) ? errorMessage(signal.reason) : errorMessage(err);
      log.warn({ err: why, reason: c.reason, ms: Date.now() - started }, superseded ? 'command superseded' : 'command failed');
      return { ok: false, error: why };
    } finally {
      this.running.delete(mine);
      link.unlink();
    }
  }

  /** Throws before a step the command may no longer take. */
  private checkStep(r: Running): void {
    const why = supersededBy({ term: r.term, newestTerm: Math.max(this.newestTerm, this.o.knownTerm()), kind: r.kind, fencesAtStart: r.fencesAtStart, fencesNow: this.fences });
    if (why !== null) throw new Superseded(why);
  }

  /** A newly accepted command stops the running and queued ones it supersedes, mid-step if need be. */
  private supersedeOthers(mine: Running, log: Logger): void {
    for (const r of this.running) {
      const why = supersededBy({ term: r.term, newestTerm: mine.term, kind: r.kind, fencesAtStart: r.fencesAtStart, fencesNow: this.fences });
      if (why === null || r.stop.signal.aborted) continue;
      log.warn({ superseded: r.kind, supersededTerm: r.term }, why);
      r.stop.abort(new Superseded(why));
    }
  }

  /**
   * The mapping of one validated command onto the instance; returns the ack's `detail`. `check`
   * runs before every step (each call on the instance) and throws when the command is superseded.
   */
  async execute(c: InstanceCommand, signal: AbortSignal, check: () => void = () => undefined): Promise<JsonValue> {
    const i = guarded(this.o.instance, check);
    const bound = { timeoutMs: c.timeoutMs, signal };
    const follow = this.followRef(c);
    switch (c.kind) {
      case 'bootstrapMaster':
        return digest(await i.bootstrap({ ...bound, role: 'master', peers: c.replication, synchroQuorum: c.synchroQuorum }));
      case 'joinReplica': {
        const now = await i.state(bound);
        if (now.configured) {
          return digest(await i.reconfigure({ ...bound, peers: c.replication, synchroQuorum: c.synchroQuorum, readOnly: true, ...(follow === undefined ? {} : { master: follow }) }));
        }
        if (follow) return digest(await i.bootstrap({ ...bound, role: 'replica', master: follow, peers: c.replication, synchroQuorum: c.synchroQuorum }));
        // An empty instance bootstrapping alone would start a history of its own: only the recorded
        // master itself (restarted) starts without one, from its own data, read-only until checked.
        if (follow === undefined) throw new Error(`cannot join ${c.pod}: the command names no master to join (the coordinator knows no master address)`);
        return digest(await i.bootstrap({ ...bound, role: 'master', readOnly: true, peers: c.replication, synchroQuorum: c.synchroQuorum }));
      }
      case 'reconfigure':
        return digest(await i.reconfigure({ ...bound, peers: c.replication, synchroQuorum: c.synchroQuorum, ...(follow === undefined ? {} : { master: follow }) }));
      case 'rejoinAsReplica':
        return digest(await i.reconfigure({ ...bound, peers: c.replication, synchroQuorum: c.synchroQuorum, readOnly: true, ...(follow === undefined ? {} : { master: follow }) }));
      case 'restartReplication': {
        // Never on a writable instance: the coordinator repairs replicas only (checked here too).
        const now = await i.state(bound);
        if (!now.configured || now.ro !== true) throw new Error(`refusing to restart the replication of ${c.pod}: it is not a configured read-only replica`);
        // box.cfg ignores an unchanged replication list: empty it first so every applier starts anew.
        await i.reconfigure({ ...bound, peers: [] });
        return digest(await i.reconfigure({ ...bound, peers: c.replication, synchroQuorum: c.synchroQuorum, ...(follow === undefined ? {} : { master: follow }) }));
      }
      case 'promote': {
        // Replication first (the new master pulls from every member), then writable + clear_synchro_queue.
        await i.reconfigure({ ...bound, peers: c.replication, master: null });
        return digest(await i.promote({ ...bound, synchroQuorum: c.synchroQuorum }));
      }
      case 'fence':
        return digest(await i.fence(bound));
      case 'waitCatchUp':
        return { vclock: { ...(await i.waitForVclock(c.vclock, c.timeoutMs, signal)) } };
      case 'expel': {
        const r = await i.expel(c.expelledUuid, bound);
        return r.id === undefined ? { deleted: r.deleted } : { deleted: r.deleted, id: r.id };
      }
      case 'bootstrapBuckets':
        return { found: (await i.bootstrapBuckets(bound)).found };
      case 'findMasters':
        await i.findMasters(bound);
        return {};
      case 'rebootstrap': {
        if (!follow) throw new Error(`cannot rebootstrap ${c.pod}: it needs a master other than itself to copy from`);
        const r = await i.rebootstrap({ ...bound, role: 'replica', master: follow, peers: c.replication, synchroQuorum: c.synchroQuorum, reason: c.reason });
        return { restartRequired: r.restartRequired, moved: r.moved.map((m) => ({ from: m.from, to: m.to, files: m.files })) };
      }
    }
  }

  /** The master this instance should follow: undefined = unknown (leave as is), null = it is the master. */
  private followRef(c: InstanceCommand): InstanceMasterRef | null | undefined {
    if (c.master === null) return undefined;
    if (c.master.pod === this.o.self) return null;
    return { uuid: c.master.uuid, address: c.master.address, pod: c.master.pod };
  }

  private queued<T>(op: () => Promise<T>): Promise<T> {
    const next = this.serial.then(op, op);
    this.serial = next.catch(() => undefined);
    return next;
  }
}

/** The instance with `check` before every call: each call is one step of a command. */
function guarded(i: ExecutorInstance, check: () => void): ExecutorInstance {
  const step = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => (...a: A): Promise<R> => {
    check();
    return f(...a);
  };
  return {
    state: step((o) => i.state(o)),
    bootstrap: step((o) => i.bootstrap(o)),
    reconfigure: step((o) => i.reconfigure(o)),
    fence: step((o) => i.fence(o)),
    promote: step((o) => i.promote(o)),
    waitForVclock: step((t, ms, s) => i.waitForVclock(t, ms, s)),
    rebootstrap: step((o) => i.rebootstrap(o)),
    expel: step((u, o) => i.expel(u, o)),
    bootstrapBuckets: step((o) => i.bootstrapBuckets(o)),
    findMasters: step((o) => i.findMasters(o)),
  };
}

function digest(s: InstanceState): JsonObject {
  return { phase: s.phase, role: s.role, ro: s.ro ?? null, id: s.id ?? null, vclock: { ...s.vclock } };
}
