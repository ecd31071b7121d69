// The coordinator's observation of a test Tarantool as its agent would report it: a pod that
// exists, is reachable and Ready, whatever its Tarantool says (`tarantool`).
import type { ObservedInstance, ObservedTarantool } from '../../agent/decide/model.js';
import type { Node } from './tarantool.js';

export function observedPod(node: Node, ordinal: number, tarantool: ObservedTarantool): ObservedInstance {
  return {
    pod: node.inst.identity.pod,
    ordinal,
    uid: `uid-${ordinal}`,
    instanceUuid: node.inst.identity.instanceUuid,
    podExists: true,
    podReady: true,
    deleting: false,
    revision: 'rev',
    uri: node.t.address,
    agentReachable: true,
    reachableFrom: { peers: 2, of: 2 },
    unreachableSinceMs: null,
    tarantoolDownSinceMs: null,
    tarantool,
  };
}
