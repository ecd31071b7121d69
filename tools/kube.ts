import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import { readPodInfo, type LocalPodInfo } from '../localcluster/cluster.js';
import { KubeClient } from '../common/kube/client.js';
import { loadKubeConfig } from '../common/kube/config.js';
import { isNotFound } from '../common/kube/errors.js';
import { namespaced, namespaces, nodes, type Resource, type Resources } from '../common/kube/resources.js';
import { sleep } from '../common/time.js';

// Small helpers for e2e tests, benchmarks and the chaos runner against a local cluster (in tests, test/e2e/global-setup.ts provides
// its kubeconfig and state file through vitest's inject()).

/** The shared layer's client for a kubeconfig, with the resources the tests and tools use. */
export interface KubeClients {
  client: KubeClient;
  /** The namespaced resources of `namespace` (pods, statefulSets, configMaps, events …). */
  in(namespace: string): Resources;
  nodes: Resource<V1Node>;
  namespaces: Resource<V1Namespace>;
}

export function kubeClients(kubeconfigPath: string): KubeClients {
  const client = new KubeClient(loadKubeConfig({ kubeconfig: kubeconfigPath }));
  return { client, in: (namespace) => namespaced(client, namespace), nodes: nodes(client), namespaces: namespaces(client) };
}

/** The cluster CA a kubeconfig trusts (the local control plane's one CA, which also signs client certificates). */
export function clusterCa(kubeconfigPath: string): Buffer {
  const ca = loadKubeConfig({ kubeconfig: kubeconfigPath }).ca;
  if (!ca) throw new Error(`${kubeconfigPath} has no certificate-authority-data`);
  return ca;
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Polls `probe` until it returns something other than undefined/false, and returns that. Probe
 * errors count as "not yet" (the last one is reported on timeout).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${detail}`);
    }
    // An abort ends the pause; the loop's throwIfAborted then reports it.
    await sleep(opts.intervalMs ?? 200, opts.signal).catch(() => undefined);
  }
}

/** Creates a namespace with a unique name and waits until its default ServiceAccount and its token exist (pods need them). */
export async function createNamespace(client: KubeClient, prefix: string, signal?: AbortSignal): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const o = signal ? { signal } : {};
  await namespaces(client).create({ metadata: { name, labels: { 'shoal.dev/e2e': 'true' } } }, o);
  // Kubernetes 1.20 refuses pods until the token controller has given the ServiceAccount its
  // legacy token Secret ("No API token found for service account"), a moment after the account.
  await waitFor(
    `ServiceAccount default in ${name} with its token`,
    async () => ((await namespaced(client, name).serviceAccounts.get('default', o)).secrets?.length ?? 0) > 0,
    { timeoutMs: 30_000, ...(signal ? { signal } : {}) },
  );
  return name;
}

/** Deletes a namespace without waiting (its pods terminate through the kubelet in the background). */
export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await namespaces(client).delete(name).catch(() => undefined);
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs kubectl with KUBECONFIG set (asynchronously: the cluster may live in this very process). */
export function kubectl(kubeconfig: string, args: string[], opts: { input?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      args,
      {
        env: { ...process.env, KUBECONFIG: kubeconfig },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The kubelet's runtime view of a pod (IP, unix uid, pids, volume and log paths). */
export function podRuntime(stateFile: string, namespace: string, name: string): LocalPodInfo | undefined {
  return readPodInfo(stateFile, namespace, name);
}

export function condition(pod: V1Pod, type: string): string | undefined {
  return pod.status?.conditions?.find((c) => c.type === type)?.status;
}

/** Waits until the pod is Ready and returns it. */
export function waitPodReady(client: KubeClient, namespace: string, name: string, opts: WaitOptions): Promise<V1Pod> {
  const pods = namespaced(client, namespace).pods;
  const o = opts.signal ? { signal: opts.signal } : {};
  return waitFor(
    `pod ${namespace}/${name} Ready`,
    async () => {
      const pod = await pods.get(name, o);
      return condition(pod, 'Ready') === 'True' ? pod : undefined;
    },
    opts,
  );
}

/** Waits until no pod of that name exists (or one with another uid does). */
export function waitPodGone(client: KubeClient, namespace: string, name: string, uid: string, opts: WaitOptions): Promise<true> {
  const pods = namespaced(client, namespace).pods;
  const o = opts.signal ? { signal: opts.signal } : {};
  return waitFor(
    `pod ${namespace}/${name} (${uid}) gone`,
    async () => {
      try {
        const pod = await pods.get(name, o);
        return pod.metadata?.uid !== uid;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    },
    opts,
  );
}
