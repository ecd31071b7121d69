import { renameSync, writeFileSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATIONS, DEFAULT_AGENT_PORT, DEFAULT_LISTEN_PORT, AGENT_CONTAINER, RUN_VOLUME } from '../common/names.js';
import type { PodRuntimeInfo } from '../localcluster/kubelet/types.js';

// The demo's --state-file (SPEC §6): where outside tools find and disturb the pieces. Pure mapping
// from the API server's pods and the kubelet's runtime view, plus an atomic write.

export interface DemoPodState {
  ip: string | null;
  statusUrl: string | null;
  tarantoolPid: number | null;
  agentPid: number | null;
  listen: string | null;
  console: string | null;
  dataDir: string | null;
}

export interface DemoState {
  kubeconfig: string;
  apiServer: string;
  pods: Record<string, DemoPodState>;
}

/** The Tarantool container of a pod: the annotation's choice, else the first non-agent container. */
function tarantoolContainer(pod: V1Pod): string | undefined {
  const named = pod.metadata?.annotations?.[ANNOTATIONS.tarantoolContainer];
  return named ?? pod.spec?.containers.find((c) => c.name !== AGENT_CONTAINER)?.name;
}

/** The host directory of the first persistent volume mounted in the Tarantool container. */
function dataDirOf(pod: V1Pod, container: string | undefined, info: PodRuntimeInfo): string | null {
  const claims = new Set((pod.spec?.volumes ?? []).filter((v) => v.persistentVolumeClaim).map((v) => v.name));
  const mount = pod.spec?.containers.find((c) => c.name === container)?.volumeMounts?.find((m) => claims.has(m.name));
  return mount ? (info.volumes[mount.name] ?? null) : null;
}

/** Exactly the pods that exist in the API server; runtime facts where the kubelet has them. */
export function demoState(
  kubeconfig: string,
  apiServer: string,
  pods: readonly V1Pod[],
  runtime: (namespace: string, name: string) => PodRuntimeInfo | undefined,
): DemoState {
  const out: Record<string, DemoPodState> = {};
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    const info = runtime(pod.metadata?.namespace ?? 'default', name);
    const ip = info?.ip ?? pod.status?.podIP ?? null;
    const container = tarantoolContainer(pod);
    const runDir = info?.volumes[RUN_VOLUME];
    out[name] = {
      ip,
      statusUrl: ip ? `http://${ip}:${DEFAULT_AGENT_PORT}/status` : null,
      tarantoolPid: (container && info?.pids[container]) || null,
      agentPid: info?.pids[AGENT_CONTAINER] || null,
      listen: ip ? `${ip}:${DEFAULT_LISTEN_PORT}` : null,
      console: runDir ? `${runDir}/console.sock` : null,
      dataDir: info ? dataDirOf(pod, container, info) : null,
    };
  }
  return { kubeconfig, apiServer, pods: out };
}

export function writeStateFile(file: string, state: DemoState): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}
