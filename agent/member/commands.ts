// The command executor every agent runs: a coordinator command (already term-checked by the mesh)
// is checked once more against the newest term this agent has acted on, its payload validated, and
// mapped onto LocalInstance. Operations run one at a time — except fence, which must never wait
// behind a slow join. The ack carries the instance's state right after, so the coordinator's next
// round does not decide on an older heartbeat.
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
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

export class CommandExecutor {
  private newestTerm = 0;
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
    const started = Date.now();
    const run = (): Promise<JsonValue> => this.execute(c, ctx.signal);
    try {
      const detail = c.kind === 'fence' ? await run() : await this.queued(run);
      const snap = await this.o.refresh();
      log.info({ reason: c.reason, ms: Date.now() - started }, 'command applied');
      const result: JsonObject = { at: snap.at, tarantool: { ...toTarantoolReport(snap) }, detail };
      return { ok: true, result };
    } catch (err) {
      log.warn({ err: errorMessage(err), reason: c.reason, ms: Date.now() - started }, 'command failed');
      return { ok: false, error: errorMessage(err) };
    }
  }

  /** The mapping of one validated command onto the instance; returns the ack's `detail`. */
  async execute(c: InstanceCommand, signal: AbortSignal): Promise<JsonValue> {
    const i = this.o.instance;
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

function digest(s: InstanceState): JsonObject {
  return { phase: s.phase, role: s.role, ro: s.ro ?? null, id: s.id ?? null, vclock: { ...s.vclock } };
}
