import type { V1Container, V1Pod } from '@kubernetes/client-node';

/**
 * Kubernetes' `$(VAR)` expansion (as in the kubelet's forked `expansion` package): `$(NAME)` becomes
 * the value when NAME is defined and stays as written otherwise; `$$` is an escaped `$`; any other
 * `$` is kept.
 */
export function expandVars(input: string, env: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      out += Object.hasOwn(env, name) ? env[name] : `$(${name})`;
      i = close;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Decoded data of the Secrets and ConfigMaps a pod refers to; null when the object does not exist. */
export interface ObjectData {
  secrets: Map<string, Record<string, string> | null>;
  configMaps: Map<string, Record<string, string> | null>;
}

export interface PodFacts {
  pod: V1Pod;
  podIP: string;
  hostIP: string;
}

const LABEL_OR_ANNOTATION = /^metadata\.(labels|annotations)\['(.+)'\]$/;

/** The value of a downward-API field path, or undefined for a path the kubelet does not know. */
export function fieldRefValue(facts: PodFacts, fieldPath: string): string | undefined {
  const { pod } = facts;
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'metadata.labels':
      return formatMap(pod.metadata?.labels);
    case 'metadata.annotations':
      return formatMap(pod.metadata?.annotations);
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIP;
    case 'status.hostIP':
      return facts.hostIP;
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
  }
  const m = LABEL_OR_ANNOTATION.exec(fieldPath);
  if (m) {
    const map = m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[m[2] as string] ?? '';
  }
  return undefined;
}

/** Labels/annotations as the downward API writes them: sorted `key="value"` lines, value Go-quoted. */
export function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map?.[k] ?? '')}`)
    .join('\n');
}

export type EnvResult = { ok: true; env: Record<string, string> } | { ok: false; message: string };

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/**
 * A container's environment as the kubelet builds it. Precedence, lowest first: the image's env,
 * `base` (service variables and the cluster's extras), `envFrom`, `env`. Each `env` value may refer
 * to `base`, `envFrom` and earlier `env` entries with `$(VAR)`.
 * Fails (→ CreateContainerConfigError) on a missing non-optional Secret/ConfigMap or key.
 */
export function resolveEnv(
  container: V1Container,
  facts: PodFacts,
  objects: ObjectData,
  base: Record<string, string>,
  imageEnv: Record<string, string> = {},
): EnvResult {
  const defined: Record<string, string> = {};
  const lookup = (kind: 'secret' | 'configmap', name: string): Record<string, string> | null | undefined =>
    (kind === 'secret' ? objects.secrets : objects.configMaps).get(name);

  for (const from of container.envFrom ?? []) {
    const ref = from.secretRef ?? from.configMapRef;
    const kind = from.secretRef ? 'secret' : 'configmap';
    if (!ref?.name) continue;
    const data = lookup(kind, ref.name);
    if (!data) {
      if (ref.optional) continue;
      return { ok: false, message: `${kind} "${ref.name}" not found` };
    }
    for (const [k, v] of Object.entries(data)) {
      const name = `${from.prefix ?? ''}${k}`;
      if (ENV_NAME.test(name)) defined[name] = v; // the kubelet skips invalid names (with an event)
    }
  }

  for (const e of container.env ?? []) {
    const mapping = { ...base, ...defined };
    if (e.valueFrom === undefined) {
      defined[e.name] = expandVars(e.value ?? '', mapping);
      continue;
    }
    const vf = e.valueFrom;
    if (vf.fieldRef) {
      const value = fieldRefValue(facts, vf.fieldRef.fieldPath);
      if (value === undefined) return { ok: false, message: `env ${e.name}: unsupported fieldPath ${vf.fieldRef.fieldPath}` };
      defined[e.name] = value;
    } else if (vf.secretKeyRef || vf.configMapKeyRef) {
      const ref = (vf.secretKeyRef ?? vf.configMapKeyRef) as { name?: string; key: string; optional?: boolean };
      const kind = vf.secretKeyRef ? 'secret' : 'configmap';
      const value = lookup(kind, ref.name ?? '')?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        return { ok: false, message: `env ${e.name}: key "${ref.key}" of ${kind} "${ref.name ?? ''}" not found` };
      }
      defined[e.name] = value;
    } else {
      // resourceFieldRef needs resource quantities; the process kubelet sets no resource limits.
      return { ok: false, message: `env ${e.name}: resourceFieldRef is not supported by the process kubelet` };
    }
  }
  return { ok: true, env: { ...imageEnv, ...base, ...defined } };
}

/** The service variables Kubernetes gives every container for the `kubernetes` Service. */
export function serviceEnv(host: string, port: number): Record<string, string> {
  return {
    KUBERNETES_SERVICE_HOST: host,
    KUBERNETES_SERVICE_PORT: String(port),
    KUBERNETES_SERVICE_PORT_HTTPS: String(port),
    KUBERNETES_PORT: `tcp://${host}:${port}`,
    KUBERNETES_PORT_443_TCP: `tcp://${host}:${port}`,
    KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
    KUBERNETES_PORT_443_TCP_ADDR: host,
    KUBERNETES_PORT_443_TCP_PORT: String(port),
  };
}
