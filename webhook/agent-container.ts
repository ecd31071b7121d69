// The pieces Shoal adds to a pod: the agent container, the Tarantool container's additions, and how
// to recognise them again (so a second pass over an injected pod changes nothing).
import type { V1Container, V1EnvVar, V1LifecycleHandler, V1ResourceRequirements, V1SecurityContext } from '@kubernetes/client-node';
import { AGENT_CONTAINER, CONSOLE_SOCKET, DEFAULT_MESH_PORT, INSTALL_CONTAINER, RUN_DIR, RUN_VOLUME } from '../common/names.js';
import { apiAccessMount, meshCaTokenMount } from './service-account-token.js';

export type SidecarMode = 'native' | 'container';

/** The Lua search path entry that lets `require('shoal')` find the module the agent writes. */
export const SHOAL_LUA_PATH_ENTRY = `${RUN_DIR}/?.lua`;

/** Where the agent asks the webhook for its mesh certificate, and the CA (PEM) that signs every peer's. */
export interface MeshCaSettings {
  url: string;
  caCert: string;
}

export interface AgentSpec {
  image: string;
  port: number;
  mode: SidecarMode;
  cluster: string;
  replicaset: string;
  meshCa?: MeshCaSettings | undefined;
}

const fieldEnv = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

/**
 * What Shoal's own containers need from the node: nothing. They run as the image's numeric user,
 * write only to the run volume, and hold no capability (the restricted Pod Security profile).
 */
export const SHOAL_SECURITY_CONTEXT: V1SecurityContext = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/**
 * The agent's share of the node. Memory: an idle agent holds about 63 MB resident with its node
 * flags (agent/node-flags.ts; bench "agent idle RSS"), about 40 MB of it Node's own floor. The
 * request covers an agent at work; the limit is the flags' heap cap (128 MB of old space, 3 MB of
 * young generation) plus that floor, so V8 collects before the kernel would kill it. No CPU limit: a
 * throttled agent misses heartbeats, and missed heartbeats are what a failover counts.
 */
export const AGENT_RESOURCES: V1ResourceRequirements = {
  requests: { cpu: '50m', memory: '96Mi' },
  limits: { memory: '192Mi' },
};

export function agentContainer(a: AgentSpec): V1Container {
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: a.port, scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  return {
    name: AGENT_CONTAINER,
    image: a.image,
    // Native sidecar: an init container that keeps running, started before and stopped after Tarantool.
    ...(a.mode === 'native' ? { restartPolicy: 'Always' } : {}),
    ports: [
      { name: 'shoal', containerPort: a.port, protocol: 'TCP' },
      ...(a.meshCa ? [{ name: 'shoal-mesh', containerPort: DEFAULT_MESH_PORT, protocol: 'TCP' }] : []),
    ],
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('POD_IP', 'status.podIP'),
      fieldEnv('POD_UID', 'metadata.uid'),
      { name: 'SHOAL_CLUSTER', value: a.cluster },
      { name: 'SHOAL_REPLICASET', value: a.replicaset },
      { name: 'SHOAL_PORT', value: String(a.port) },
      ...(a.meshCa
        ? [
            { name: 'SHOAL_MESH_PORT', value: String(DEFAULT_MESH_PORT) },
            { name: 'SHOAL_MESH_CA_URL', value: a.meshCa.url },
            { name: 'SHOAL_MESH_CA_CERT', value: a.meshCa.caCert },
          ]
        : []),
    ],
    // The pod's only ServiceAccount tokens (service-account-token.ts): the agent calls the API and the
    // mesh CA, Tarantool neither.
    volumeMounts: [{ name: RUN_VOLUME, mountPath: RUN_DIR }, apiAccessMount(), ...(a.meshCa ? [meshCaTokenMount()] : [])],
    readinessProbe: probe('/readyz', 5, 2),
    // Generous: a restart of the agent never stops Tarantool, but restarting it needlessly is noise.
    livenessProbe: probe('/healthz', 10, 6),
    resources: AGENT_RESOURCES,
    securityContext: SHOAL_SECURITY_CONTEXT,
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/**
 * The init container that writes shoal.lua into the shared run volume before any other container
 * starts, so Tarantool's `require('shoal')` never races the agent (in container mode nothing else
 * orders the two; in native mode the agent sidecar is only "started", not done writing).
 */
export function installContainer(image: string): V1Container {
  return {
    name: INSTALL_CONTAINER,
    image,
    args: ['install-lua'],
    volumeMounts: [{ name: RUN_VOLUME, mountPath: RUN_DIR }],
    // It writes one file and exits: the agent's memory request would only reserve what it never uses.
    resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '128Mi' } },
    securityContext: SHOAL_SECURITY_CONTEXT,
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

export function shoalPreStop(port: number): V1LifecycleHandler {
  return { httpGet: { path: '/prestop', port, scheme: 'HTTP' } };
}

/** True for the preStop hook Shoal adds (compared loosely: the API server adds defaults). */
export function isShoalPreStop(h: V1LifecycleHandler, port: number): boolean {
  const g = h.httpGet;
  return !!g && g.path === '/prestop' && String(g.port) === String(port) && !h.exec && !h.tcpSocket;
}

/** LUA_PATH with Shoal's directory appended to the user's value (the user's own modules win). */
export function extendLuaPath(current: string | undefined): string {
  if (current === undefined || current.replace(/;+$/, '') === '') return `${SHOAL_LUA_PATH_ENTRY};;`;
  if (current.split(';').includes(SHOAL_LUA_PATH_ENTRY)) return current;
  // Keep a trailing ";;" (Lua's "and the default path") at the end, where the user put it.
  const trimmed = current.replace(/;+$/, '');
  const keepsDefault = /;;$/.test(current);
  return `${trimmed};${SHOAL_LUA_PATH_ENTRY}${keepsDefault ? ';;' : ''}`;
}

export const TARANTOOL_ENV = { consoleSocket: { name: 'SHOAL_CONSOLE_SOCKET', value: CONSOLE_SOCKET } } as const;
