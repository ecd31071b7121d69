// The pure core of the webhook: object in → mutated object (or a refusal that says what to fix) out.
// No I/O here; review.ts turns the difference into a JSON Patch.
import type { V1Container, V1EnvVar, V1ObjectMeta, V1PodSpec } from '@kubernetes/client-node';
import { AGENT_CONTAINER, ANNOTATIONS, API_ACCESS_VOLUME, CLUSTER_LABEL, INSTALL_CONTAINER, MESH_CA_VOLUME, RUN_DIR, RUN_VOLUME } from '../common/names.js';
import { dns1123LabelProblem } from '../common/dns.js';
import { isRecord, jsonEqual, stringMap, type JsonRecord } from './json.js';
import { podSpecProblems, podSpecShapeProblems, tarantoolContainer, type PodView } from './pod-checks.js';
import { agentContainer, extendLuaPath, installContainer, shoalPreStop, TARANTOOL_ENV, type MeshCaSettings, type SidecarMode } from './agent-container.js';
import { applyNativeStyle, nativeStyleOf } from './native-style.js';
import { apiAccessVolume, applyTokenDecision, decideServiceAccountToken, meshCaTokenVolume } from './service-account-token.js';

export interface InjectOptions {
  agentImage: string;
  sidecarMode: SidecarMode;
  /** The agent's HTTP port (probes, preStop, SHOAL_PORT). */
  agentPort: number;
  /** Written to `shoal.dev/injected`. */
  version: string;
  /** Where the agent asks for its mesh certificate and the CA it checks peers with; omitted = no mesh-CA settings. */
  meshCa?: MeshCaSettings;
}

export type Mutation =
  /** `object` is the input itself when nothing changes; `reason` is for logs. */
  | { allowed: true; object: JsonRecord; reason: string; warnings: string[] }
  | { allowed: false; message: string };

const refuse = (what: string, problems: string[]): Mutation => ({
  allowed: false,
  message: `Shoal cannot manage ${what}: ${problems.join('; ')}`,
});
const unchanged = (object: JsonRecord, reason: string, warnings: string[] = []): Mutation => ({
  allowed: true,
  object,
  reason,
  warnings,
});

interface Labelled {
  meta: JsonRecord;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  cluster: string | undefined;
}

/** Reads metadata, labels and annotations, reporting malformed ones into `problems`. */
function readMeta(metaValue: unknown, where: string, problems: string[]): Labelled {
  const meta = isRecord(metaValue) ? metaValue : {};
  if (metaValue !== undefined && !isRecord(metaValue)) problems.push(`${where} must be an object`);
  const labels = stringMap(meta.labels);
  const annotations = stringMap(meta.annotations);
  if (!labels) problems.push(`${where}.labels must map strings to strings`);
  if (!annotations) problems.push(`${where}.annotations must map strings to strings`);
  return { meta, labels: labels ?? {}, annotations: annotations ?? {}, cluster: labels?.[CLUSTER_LABEL] };
}

function clusterProblem(cluster: string): string | null {
  const problem = dns1123LabelProblem(cluster);
  return problem === null
    ? null
    : `label ${CLUSTER_LABEL}=${JSON.stringify(cluster)} is not a valid cluster name (${problem}): use a DNS-1123 label such as "demo"`;
}

function kindProblem(obj: JsonRecord, kind: string): string | null {
  return obj.kind === undefined || obj.kind === kind ? null : `the object is a ${String(obj.kind)}, not a ${kind}`;
}

// ---------------------------------------------------------------------------------------------
// Pods

/** The StatefulSet a pod belongs to: its owner, else its name without the trailing `-<ordinal>`. */
export function replicasetOf(meta: V1ObjectMeta): string | null {
  const owner = (meta.ownerReferences ?? []).find((r) => isRecord(r) && r.kind === 'StatefulSet' && typeof r.name === 'string');
  if (owner) return owner.name;
  const m = /^(.+)-(\d+)$/.exec(meta.name ?? '');
  return m?.[1] ?? null;
}

function ensureEnv(c: V1Container, env: V1EnvVar): void {
  c.env ??= [];
  if (!c.env.some((e) => e.name === env.name)) c.env.push(env);
}

export function mutatePod(input: unknown, opts: InjectOptions): Mutation {
  if (!isRecord(input)) return refuse('this request', ['its object is not a JSON object']);
  const problems: string[] = [];
  const kp = kindProblem(input, 'Pod');
  if (kp) return refuse('this request', [kp]);
  const { meta, annotations, cluster } = readMeta(input.metadata, 'metadata', problems);
  const what = `pod ${JSON.stringify(meta.name ?? meta.generateName ?? '')}`;
  if (problems.length > 0) return refuse(what, problems);
  if (cluster === undefined) return unchanged(input, 'unlabelled');
  const cp = clusterProblem(cluster);
  if (cp) problems.push(cp);
  problems.push(...podSpecShapeProblems(input.spec, 'spec'));
  if (problems.length > 0) return refuse(what, problems);

  const view: PodView = {
    spec: input.spec as V1PodSpec,
    annotations,
    injected: annotations[ANNOTATIONS.injected] !== undefined,
  };
  problems.push(...podSpecProblems(view, opts.agentPort));
  const replicaset = replicasetOf(meta as V1ObjectMeta);
  if (replicaset === null) {
    problems.push(
      'it has no StatefulSet owner and its name does not end in -<ordinal>: run Tarantool pods through a StatefulSet',
    );
  }
  const container = tarantoolContainer(view);
  const style = container ? nativeStyleOf(container) : { userConfig: null, problems: [] };
  problems.push(...style.problems);
  if (problems.length > 0 || replicaset === null) return refuse(what, problems);

  const pod = structuredClone(input);
  const podMeta = pod.metadata as V1ObjectMeta;
  const spec = pod.spec as V1PodSpec;
  // readMeta proved annotations (if any) is a string map.
  podMeta.annotations ??= {};
  podMeta.annotations[ANNOTATIONS.injected] ??= opts.version;

  // Only the agent holds the ServiceAccount token (unless the pod itself asks for it everywhere).
  const token = decideServiceAccountToken(spec);
  applyTokenDecision(spec, token);

  spec.volumes ??= [];
  if (!spec.volumes.some((v) => v.name === RUN_VOLUME)) spec.volumes.push({ name: RUN_VOLUME, emptyDir: {} });
  if (!spec.volumes.some((v) => v.name === API_ACCESS_VOLUME)) spec.volumes.push(apiAccessVolume());
  if (opts.meshCa && !spec.volumes.some((v) => v.name === MESH_CA_VOLUME)) spec.volumes.push(meshCaTokenVolume());

  const tarantool = tarantoolContainer({ ...view, spec }) as V1Container; // podSpecProblems proved it exists
  tarantool.volumeMounts ??= [];
  if (!tarantool.volumeMounts.some((m) => m.name === RUN_VOLUME)) {
    tarantool.volumeMounts.push({ name: RUN_VOLUME, mountPath: RUN_DIR });
  }
  ensureEnv(tarantool, { ...TARANTOOL_ENV.consoleSocket });
  const luaPath = (tarantool.env ?? []).find((e) => e.name === 'LUA_PATH');
  if (luaPath) luaPath.value = extendLuaPath(luaPath.value);
  else ensureEnv(tarantool, { name: 'LUA_PATH', value: extendLuaPath(undefined) });
  tarantool.lifecycle ??= {};
  tarantool.lifecycle.preStop ??= shoalPreStop(opts.agentPort);
  if (style.userConfig !== null) {
    applyNativeStyle(tarantool, { ...style, userConfig: style.userConfig });
    // The config may template {{ replicaset_name }} / {{ group_name }} into its directories.
    ensureEnv(tarantool, { name: 'SHOAL_CLUSTER', value: cluster });
    ensureEnv(tarantool, { name: 'SHOAL_REPLICASET', value: replicaset });
  }

  const hasAgent = [...spec.containers, ...(spec.initContainers ?? [])].some((c) => c.name === AGENT_CONTAINER);
  if (!hasAgent) {
    const agent = agentContainer({
      image: opts.agentImage,
      port: opts.agentPort,
      mode: opts.sidecarMode,
      cluster,
      replicaset,
      meshCa: opts.meshCa,
    });
    spec.initContainers ??= [];
    if (!spec.initContainers.some((c) => c.name === INSTALL_CONTAINER)) spec.initContainers.push(installContainer(opts.agentImage));
    if (opts.sidecarMode === 'native') spec.initContainers.push(agent);
    else spec.containers.push(agent);
  }
  return {
    allowed: true,
    object: pod,
    reason: `${view.injected ? 'already injected' : 'injected'}; ${token.reason}`,
    warnings: token.kind === 'every-container' ? [token.warning] : [],
  };
}

// ---------------------------------------------------------------------------------------------
// StatefulSets

const ON_DELETE = { type: 'OnDelete' } as const;
/** What Kubernetes assumes when a StatefulSet names no strategy. */
const KUBERNETES_DEFAULT_STRATEGY = { type: 'RollingUpdate' } as const;

function statefulSetProblems(sts: JsonRecord, l: Labelled, agentPort: number): string[] {
  const problems: string[] = [];
  const cp = clusterProblem(l.cluster ?? '');
  if (cp) problems.push(cp);
  const spec = sts.spec;
  if (!isRecord(spec) || !isRecord(spec.template)) return [...problems, 'spec.template is missing'];
  if (spec.updateStrategy !== undefined && !isRecord(spec.updateStrategy)) problems.push('spec.updateStrategy must be an object');
  const tpl = readMeta(spec.template.metadata, 'spec.template.metadata', problems);
  if (tpl.cluster !== undefined && tpl.cluster !== l.cluster) {
    problems.push(
      `spec.template.metadata.labels has ${CLUSTER_LABEL}=${JSON.stringify(tpl.cluster)} but the StatefulSet has ` +
        `${JSON.stringify(l.cluster)}: make them equal (or drop the template's; Shoal copies the StatefulSet's)`,
    );
  }
  for (const reserved of [RUN_VOLUME, API_ACCESS_VOLUME, MESH_CA_VOLUME]) {
    if (Array.isArray(spec.volumeClaimTemplates) && spec.volumeClaimTemplates.some((t) => isRecord(t) && isRecord(t.metadata) && t.metadata.name === reserved)) {
      problems.push(`rename your volumeClaimTemplate "${reserved}": Shoal reserves that volume name`);
    }
  }
  const shape = podSpecShapeProblems(spec.template.spec, 'spec.template.spec');
  if (shape.length > 0 || problems.length > 0) return [...problems, ...shape];

  const view: PodView = {
    spec: spec.template.spec as V1PodSpec,
    annotations: tpl.annotations,
    injected: tpl.annotations[ANNOTATIONS.injected] !== undefined,
  };
  problems.push(...podSpecProblems(view, agentPort));
  // The agents read the StatefulSet's annotation; the pod webhook sees only the pod's (from the template).
  const forAgents = tarantoolContainer({ ...view, annotations: l.annotations })?.name;
  const forPods = tarantoolContainer(view)?.name;
  if (forAgents !== forPods && l.annotations[ANNOTATIONS.tarantoolContainer] !== undefined) {
    problems.push(
      `annotation ${ANNOTATIONS.tarantoolContainer} is ${JSON.stringify(l.annotations[ANNOTATIONS.tarantoolContainer])} on ` +
        `the StatefulSet, but its pods only see spec.template.metadata.annotations (there: ` +
        `${JSON.stringify(tpl.annotations[ANNOTATIONS.tarantoolContainer] ?? null)}): set the same annotation in the template`,
    );
  }
  return problems;
}

/** Nothing Shoal looks at changed since `old`: an UPDATE that only touches metadata, replicas, …. */
function sameForShoal(sts: JsonRecord, old: JsonRecord): boolean {
  const pick = (o: JsonRecord) => {
    const meta = isRecord(o.metadata) ? o.metadata : {};
    const spec = isRecord(o.spec) ? o.spec : {};
    return [meta.labels, isRecord(meta.annotations) ? meta.annotations[ANNOTATIONS.tarantoolContainer] : undefined, spec.template, spec.volumeClaimTemplates];
  };
  return jsonEqual(pick(sts), pick(old));
}

/**
 * A labelled StatefulSet: the cluster label copied into the pod template, `updateStrategy` OnDelete
 * (the agents roll pods themselves) and the user's strategy kept in `shoal.dev/update-strategy`.
 * The template is also checked the way its pods will be, so mistakes surface at `kubectl apply`
 * rather than as FailedCreate events. `old` is the stored object of an UPDATE.
 */
export function mutateStatefulSet(input: unknown, opts: InjectOptions, old?: unknown): Mutation {
  if (!isRecord(input)) return refuse('this request', ['its object is not a JSON object']);
  const kp = kindProblem(input, 'StatefulSet');
  if (kp) return refuse('this request', [kp]);
  const metaProblems: string[] = [];
  const l = readMeta(input.metadata, 'metadata', metaProblems);
  const what = `StatefulSet ${JSON.stringify(l.meta.name ?? '')}`;
  if (metaProblems.length > 0) return refuse(what, metaProblems);
  if (l.cluster === undefined) return unchanged(input, 'unlabelled');
  // Never stand in the way of a deletion (finalizer updates of a StatefulSet on its way out).
  if (l.meta.deletionTimestamp) return unchanged(input, 'being deleted');

  const problems = statefulSetProblems(input, l, opts.agentPort);
  if (problems.length > 0) {
    // A StatefulSet from before Shoal was installed must stay updatable (scale, metadata, GC).
    if (isRecord(old) && sameForShoal(input, old)) {
      return unchanged(input, 'left alone: its problems predate this update', [
        `Shoal leaves ${what} alone until you fix: ${problems.join('; ')}`,
      ]);
    }
    return refuse(what, problems);
  }

  const sts = structuredClone(input);
  const meta = sts.metadata as V1ObjectMeta;
  const spec = sts.spec as JsonRecord;
  const template = spec.template as JsonRecord;
  const tplMeta = (template.metadata ??= {}) as V1ObjectMeta;
  (tplMeta.labels ??= {})[CLUSTER_LABEL] = l.cluster;

  const current = spec.updateStrategy ?? KUBERNETES_DEFAULT_STRATEGY;
  const oldAnnotations = isRecord(old) && isRecord(old.metadata) ? stringMap(old.metadata.annotations) : null;
  const kept = l.annotations[ANNOTATIONS.updateStrategy] ?? oldAnnotations?.[ANNOTATIONS.updateStrategy];
  // Keep the first original: OnDelete here is usually our own doing, never the user's new wish.
  const original = jsonEqual(current, ON_DELETE) && kept !== undefined ? kept : JSON.stringify(current);
  (meta.annotations ??= {})[ANNOTATIONS.updateStrategy] = original;
  spec.updateStrategy = { ...ON_DELETE };
  // Said here too: the pods' own warning reaches only the StatefulSet controller, this one reaches `kubectl apply`.
  const token = decideServiceAccountToken(template.spec as V1PodSpec);
  return { allowed: true, object: sts, reason: 'mutated', warnings: token.kind === 'every-container' ? [token.warning] : [] };
}
