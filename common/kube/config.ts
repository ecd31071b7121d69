// Where the API server is and how to prove who we are: the one place that reads in-cluster
// credentials or a kubeconfig. The in-cluster path (the agent and the webhook in a pod) reads three
// files and two variables; a kubeconfig (CLI, tools, tests, a webhook outside a cluster) is parsed
// by kubeconfig.ts with the `yaml` package, which the agent loads anyway (console replies), rather
// than by client-node's KubeConfig, whose import alone costs the agent ~80 MB.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';
import { ShoalError, errorMessage } from '../errors.js';
import { SERVICE_ACCOUNT_DIR } from '../names.js';
import { parseKubeconfig } from './kubeconfig.js';
import { tokenFileSource, type KubeTarget } from './target.js';

export type { KubeTarget, TokenSource } from './target.js';

export { SERVICE_ACCOUNT_DIR };

export interface LoadOptions {
  /** An explicit kubeconfig file: wins over everything else. */
  kubeconfig?: string;
  env?: NodeJS.ProcessEnv;
  serviceAccountDir?: string;
}

/** The in-cluster target from KUBERNETES_SERVICE_HOST/PORT and the mounted service account. */
export function inClusterTarget(env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): KubeTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) throw new ShoalError('KUBERNETES_SERVICE_HOST is not set', 'run inside a pod, or set KUBECONFIG');
  const tokenFile = join(serviceAccountDir, 'token');
  if (!existsSync(tokenFile)) {
    throw new ShoalError(
      `KUBERNETES_SERVICE_HOST is set but there is no service account token at ${tokenFile}`,
      'mount the pod\'s service account token (automountServiceAccountToken: true), or unset KUBERNETES_SERVICE_HOST and set KUBECONFIG',
    );
  }
  const caFile = join(serviceAccountDir, 'ca.crt');
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`,
    ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : {}),
    token: tokenFileSource(tokenFile),
  };
}

/**
 * The one way to find the API server: an explicit kubeconfig; else in-cluster config when
 * KUBERNETES_SERVICE_HOST is set (a pod); else KUBECONFIG; else ~/.kube/config.
 */
export function loadKubeConfig(opts: LoadOptions = {}): KubeTarget {
  const env = opts.env ?? process.env;
  try {
    if (opts.kubeconfig) return fromKubeconfigFile(opts.kubeconfig);
    if (env.KUBERNETES_SERVICE_HOST) return inClusterTarget(env, opts.serviceAccountDir);
    if (env.KUBECONFIG) {
      const file = env.KUBECONFIG.split(delimiter).find((f) => f && existsSync(f));
      if (!file) throw new ShoalError(`KUBECONFIG names no readable file (${env.KUBECONFIG})`, 'point KUBECONFIG at an existing kubeconfig');
      return fromKubeconfigFile(file);
    }
    return fromKubeconfigFile(join(env.HOME ?? homedir(), '.kube', 'config'));
  } catch (err) {
    if (err instanceof ShoalError) throw err;
    throw new ShoalError(`cannot load a Kubernetes client configuration: ${errorMessage(err)}`, 'run inside a pod with a service account, or set KUBECONFIG to a readable kubeconfig', {
      cause: err,
    });
  }
}

function fromKubeconfigFile(file: string): KubeTarget {
  return parseKubeconfig(readFileSync(file, 'utf8'), file);
}
