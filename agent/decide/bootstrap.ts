import { instanceOf, isWritable } from './members.js';
import type { Member, ObservedInstance, ObservedReplicaSet, PersistedReplicaSet } from './model.js';
import { podList } from './format.js';
import { note, type Step } from './step.js';
import { hasRows } from '../tarantool/vclock.js';

// A replica set without members: bootstrap it from its first instance, or adopt the instances that
// already hold data (the state ConfigMap was lost or the StatefulSet was recreated over old volumes).

const holdsData = (i: ObservedInstance): boolean =>
  i.tarantool !== null && (i.tarantool.configured || (i.tarantool.vclock !== null && hasRows(i.tarantool.vclock)));

/** Existing pods about which we cannot tell whether they hold data. */
const undecided = (i: ObservedInstance): boolean =>
  i.podExists && !(i.tarantool !== null && (i.tarantool.configured || i.tarantool.vclock !== null));

const asMember = (i: ObservedInstance): Member => ({ pod: i.pod, uuid: i.instanceUuid, id: i.tarantool?.id ?? null });

export function planBootstrap(rs: ObservedReplicaSet, state: PersistedReplicaSet): Step | null {
  if (state.members.length > 0) return null;
  const existing = rs.instances.filter((i) => i.podExists).sort((a, b) => a.ordinal - b.ordinal);
  const withData = existing.filter(holdsData);
  if (withData.length > 0) {
    const writable = withData.filter(isWritable);
    const master = writable.length === 1 ? (writable[0]?.pod ?? null) : null;
    const next: PersistedReplicaSet = { ...state, members: withData.map(asMember), master };
    const reason =
      `adopting ${podList(withData.map((i) => i.pod))}: they already hold data and no members are recorded; ` +
      (master ? `${master} is the only writable one and stays master` : 'electing a master among them');
    return {
      state: next,
      commands: [{ kind: 'event', replicaset: rs.name, eventType: 'Warning', eventReason: 'Adopt', reason }],
      bumpTerm: master !== null,
      reason,
      final: true,
    };
  }
  const unsure = existing.filter(undecided);
  if (unsure.length > 0) {
    return note(state, `not bootstrapping yet: cannot tell whether ${podList(unsure.map((i) => i.pod))} hold data`);
  }
  const first = existing.find(
    (i) =>
      !i.deleting &&
      i.ordinal < rs.specReplicas &&
      i.agentReachable &&
      i.unreachableSinceMs === null &&
      i.uri !== null &&
      i.tarantool?.alive === true &&
      i.tarantool.status === 'unconfigured',
  );
  if (!first || first.uri === null) return note(state, `waiting for a first instance of ${rs.name} to come up`);
  const reason = `bootstrapping replica set ${rs.name} with ${first.pod} as its master (lowest ready ordinal)`;
  return {
    state: { ...state, members: [asMember(first)], master: first.pod, masterQuorum: 1 },
    commands: [
      { kind: 'event', replicaset: rs.name, eventType: 'Normal', eventReason: 'Bootstrap', reason },
      { kind: 'bootstrapMaster', replicaset: rs.name, pod: first.pod, reason, replication: [first.uri], synchroQuorum: 1 },
    ],
    bumpTerm: true,
    reason,
    final: true,
  };
}

/** No member was ever configured or holds data: the replica set was never bootstrapped (a lost bootstrapMaster is resent). */
export function neverBootstrapped(rs: ObservedReplicaSet, state: PersistedReplicaSet): boolean {
  return state.members.every((m) => {
    const t = instanceOf(rs, m.pod)?.tarantool;
    return t !== null && t !== undefined && !t.configured && t.vclock !== null && !hasRows(t.vclock);
  });
}
