// In a cluster, every webhook replica serves the certificate kept in one Secret: the first replica
// creates it (a 409 means another was first: read theirs), a replica that finds it expiring renews
// the serving certificate with the same CA (compare-and-swap on resourceVersion). One CA, so the
// caBundle never flips between replicas.
import type { Logger } from '../common/log.js';
import { ShoalError, errorMessage } from '../common/errors.js';
import { apiStatus, type ClusterAccess, type StoredSecret } from './cluster.js';
import { bundleProblems, generateBundle, renewServing, type TlsBundle } from './tls.js';

const KEYS = { cert: 'tls.crt', key: 'tls.key', caCert: 'ca.crt', caKey: 'ca.key' } as const;

export const certSecretName = (service: string): string => `${service}-tls`;

function fromSecret(s: StoredSecret): TlsBundle | null {
  const { [KEYS.cert]: cert, [KEYS.key]: key, [KEYS.caCert]: caCert, [KEYS.caKey]: caKey } = s.data;
  if (!cert || !key) return null;
  return { cert, key, ...(caCert ? { caCert } : {}), ...(caKey ? { caKey } : {}) };
}

function toSecret(b: TlsBundle): Record<string, string> {
  return {
    [KEYS.cert]: b.cert,
    [KEYS.key]: b.key,
    ...(b.caCert ? { [KEYS.caCert]: b.caCert } : {}),
    ...(b.caKey ? { [KEYS.caKey]: b.caKey } : {}),
  };
}

const hasCa = (b: TlsBundle): b is Required<TlsBundle> => !!b.caCert && !!b.caKey;

export interface EnsureBundleOptions {
  namespace: string;
  secretName: string;
  names: string[];
  /** Files already in --cert-dir: used to seed the Secret when they fit, so a hand-made certificate wins. */
  local: TlsBundle | null;
  log: Logger;
  now?: Date;
}

function accessError(err: unknown, o: EnsureBundleOptions): ShoalError {
  const status = apiStatus(err);
  const hint =
    status === 403
      ? `let the webhook's ServiceAccount get/create/update Secret ${o.secretName} in ${o.namespace} (manifests/rbac.yaml)`
      : status === 404
        ? `create namespace ${o.namespace}, or pass --namespace`
        : 'check that the API server is reachable';
  return new ShoalError(`cannot keep the certificate in Secret ${o.namespace}/${o.secretName}: ${errorMessage(err)}`, hint, { cause: err });
}

/** The bundle every replica must serve, creating or renewing the Secret as needed. */
export async function ensureClusterBundle(access: ClusterAccess, o: EnsureBundleOptions): Promise<TlsBundle> {
  const now = o.now ?? new Date();
  try {
    // Each round ends in success or in a race lost to another replica, after which we read theirs.
    for (let round = 0; round < 5; round++) {
      const stored = await access.readSecret(o.namespace, o.secretName);
      if (!stored) {
        const seed = o.local && o.local.caCert && bundleProblems(o.local, o.names, now).length === 0 ? o.local : await generateBundle(o.names, now);
        if ((await access.createSecret(o.namespace, o.secretName, toSecret(seed))) === 'created') {
          o.log.info({ secret: o.secretName, seeded: seed === o.local ? 'cert-dir' : 'generated' }, 'created the certificate Secret');
          return seed;
        }
        continue;
      }
      const current = fromSecret(stored);
      const problems = current ? bundleProblems(current, o.names, now) : ['the Secret lacks tls.crt or tls.key'];
      if (current && problems.length === 0) return current;
      // Renew the serving certificate under the same CA when the CA itself is fine; else start over.
      const caUsable = current && hasCa(current) && bundleProblems({ cert: current.caCert, key: current.caKey }, [], now).length === 0;
      const next = caUsable ? await renewServing(current as Required<TlsBundle>, o.names, now) : await generateBundle(o.names, now);
      if ((await access.replaceSecret(o.namespace, o.secretName, stored.resourceVersion, toSecret(next))) === 'replaced') {
        o.log.warn({ secret: o.secretName, problems, newCa: !caUsable }, 'renewed the certificate in the Secret');
        return next;
      }
    }
  } catch (err) {
    throw accessError(err, o);
  }
  throw new ShoalError(`Secret ${o.namespace}/${o.secretName} kept changing under us`, 'check that only shoal-webhook replicas write it');
}

/**
 * Makes every webhook of the MutatingWebhookConfiguration trust `caPem`, patching only the webhooks
 * whose caBundle differs. 'missing' when the configuration does not exist (yet).
 */
export async function syncCaBundle(access: ClusterAccess, configName: string, caPem: string): Promise<'patched' | 'current' | 'missing'> {
  const bundles = await access.readCaBundles(configName);
  if (bundles === null) return 'missing';
  const stale = bundles.map((w, index) => ({ ...w, index })).filter((w) => w.caBundle !== caPem);
  if (stale.length === 0) return 'current';
  await access.patchCaBundles(configName, stale, caPem);
  return 'patched';
}
