// What a pod (or a StatefulSet's pod template) must look like for Shoal to inject into it. Every
// problem is a sentence that says what to fix; an empty list means "go ahead".
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import { AGENT_CONTAINER, ANNOTATIONS, API_ACCESS_VOLUME, CONSOLE_SOCKET, INSTALL_CONTAINER, MESH_CA_VOLUME, RUN_DIR, RUN_VOLUME } from '../common/names.js';
import { isRecord } from './json.js';
import { isShoalPreStop } from './agent-container.js';

/** The pod spec after `podSpecShapeProblems` found nothing: safe to read as a V1PodSpec. */
export interface PodView {
  spec: V1PodSpec;
  annotations: Record<string, string>;
  /** Already carries `shoal.dev/injected`: names Shoal reserves are then Shoal's own. */
  injected: boolean;
}

function namedList(value: unknown, where: string, problems: string[], required = false): unknown[] {
  if (value === undefined || value === null) {
    if (required) problems.push(`${where} is missing`);
    return [];
  }
  if (!Array.isArray(value)) {
    problems.push(`${where} must be a list`);
    return [];
  }
  value.forEach((item, i) => {
    if (!isRecord(item) || typeof item.name !== 'string' || item.name === '') {
      problems.push(`${where}[${i}] must be an object with a non-empty "name"`);
    }
  });
  return value;
}

function containerShapeProblems(c: unknown, where: string, problems: string[]): void {
  if (!isRecord(c)) return; // reported by namedList
  namedList(c.env, `${where}.env`, problems);
  if (c.volumeMounts !== undefined && c.volumeMounts !== null) {
    if (!Array.isArray(c.volumeMounts)) problems.push(`${where}.volumeMounts must be a list`);
    else {
      c.volumeMounts.forEach((m, i) => {
        if (!isRecord(m) || typeof m.name !== 'string' || typeof m.mountPath !== 'string') {
          problems.push(`${where}.volumeMounts[${i}] must have a "name" and a "mountPath"`);
        }
      });
    }
  }
  if (c.ports !== undefined && c.ports !== null && !(Array.isArray(c.ports) && c.ports.every(isRecord))) {
    problems.push(`${where}.ports must be a list of objects`);
  }
  if (c.lifecycle !== undefined && c.lifecycle !== null && !isRecord(c.lifecycle)) {
    problems.push(`${where}.lifecycle must be an object`);
  }
}

/** Structural problems with the fields Shoal reads or writes (anything else is left alone). */
export function podSpecShapeProblems(spec: unknown, where: string): string[] {
  if (!isRecord(spec)) return [`${where} is missing or not an object`];
  const problems: string[] = [];
  const containers = namedList(spec.containers, `${where}.containers`, problems, true);
  const inits = namedList(spec.initContainers, `${where}.initContainers`, problems);
  namedList(spec.volumes, `${where}.volumes`, problems);
  containers.forEach((c, i) => containerShapeProblems(c, `${where}.containers[${i}]`, problems));
  inits.forEach((c, i) => containerShapeProblems(c, `${where}.initContainers[${i}]`, problems));
  return problems;
}

/** The container Tarantool runs in: the one the annotation names, else the first one. */
export function tarantoolContainer(view: PodView): V1Container | undefined {
  const wanted = view.annotations[ANNOTATIONS.tarantoolContainer];
  return wanted === undefined ? view.spec.containers[0] : view.spec.containers.find((c) => c.name === wanted);
}

function declaresPort(c: V1Container, port: number): boolean {
  return (c.ports ?? []).some((p) => p.containerPort === port);
}

/** Semantic problems: what would make the injected pod broken or clobber something of the user's. */
export function podSpecProblems(view: PodView, agentPort: number): string[] {
  const { spec, annotations, injected } = view;
  const problems: string[] = [];
  if (spec.containers.length === 0) {
    return ['the pod has no containers: add your Tarantool container to spec.containers'];
  }
  const wanted = annotations[ANNOTATIONS.tarantoolContainer];
  const tarantool = tarantoolContainer(view);
  if (!tarantool || tarantool.name === AGENT_CONTAINER) {
    const names = spec.containers.filter((c) => c.name !== AGENT_CONTAINER).map((c) => c.name);
    problems.push(
      `annotation ${ANNOTATIONS.tarantoolContainer}=${JSON.stringify(wanted)} names no container of the pod ` +
        `(it has: ${names.join(', ')}): set it to the container that runs Tarantool, or remove it to use the first`,
    );
  }
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  if (!injected) {
    for (const reserved of [AGENT_CONTAINER, INSTALL_CONTAINER]) {
      if (all.some((c) => c.name === reserved)) {
        problems.push(`rename your container "${reserved}": Shoal reserves that name for its agent`);
      }
    }
    if ((spec.volumes ?? []).some((v) => v.name === RUN_VOLUME)) {
      problems.push(
        `rename your volume "${RUN_VOLUME}" (and the volumeMounts that use it): Shoal reserves that name for the ` +
          `directory it shares between the agent and Tarantool`,
      );
    }
    for (const reserved of [API_ACCESS_VOLUME, MESH_CA_VOLUME]) {
      if ((spec.volumes ?? []).some((v) => v.name === reserved)) {
        problems.push(`rename your volume "${reserved}": Shoal reserves that name for the agent's ServiceAccount tokens`);
      }
    }
    if (tarantool && (tarantool.volumeMounts ?? []).some((m) => m.mountPath.replace(/\/+$/, '') === RUN_DIR)) {
      problems.push(`container "${tarantool.name}" already mounts something at ${RUN_DIR}: Shoal needs that path, mount yours elsewhere`);
    }
    const clash = spec.containers.find((c) => declaresPort(c, agentPort));
    if (clash) {
      problems.push(
        `container "${clash.name}" uses port ${agentPort}, which the Shoal agent listens on in the same pod: ` +
          `move it, or run the webhook with another --agent-port`,
      );
    }
  }
  if (tarantool) problems.push(...tarantoolEnvProblems(tarantool, agentPort));
  return problems;
}

function tarantoolEnvProblems(c: V1Container, agentPort: number): string[] {
  const problems: string[] = [];
  const preStop = c.lifecycle?.preStop;
  if (preStop && !isShoalPreStop(preStop, agentPort)) {
    problems.push(
      `container "${c.name}" has its own lifecycle.preStop hook; Shoal needs that hook so a master hands over ` +
        `before it stops: remove yours (run clean-up from box.ctl.on_shutdown instead)`,
    );
  }
  const luaPath = (c.env ?? []).find((e) => e.name === 'LUA_PATH');
  if (luaPath && luaPath.valueFrom) {
    problems.push(`container "${c.name}" takes LUA_PATH from valueFrom, which Shoal cannot extend: set it as a plain value`);
  }
  const socket = (c.env ?? []).find((e) => e.name === 'SHOAL_CONSOLE_SOCKET');
  if (socket && (socket.valueFrom || socket.value !== CONSOLE_SOCKET)) {
    problems.push(`container "${c.name}" sets SHOAL_CONSOLE_SOCKET to something else: remove it, Shoal sets it to ${CONSOLE_SOCKET}`);
  }
  return problems;
}
