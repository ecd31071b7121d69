import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { Logger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import { isAlreadyExists, isNotFound } from '../common/kube/errors.js';
import { KubeClient } from '../common/kube/client.js';
import { loadKubeConfig } from '../common/kube/config.js';
import { persistentVolumes, storageClasses } from '../common/kube/resources.js';
import { ListWatch, type KubeObject } from '../common/kube/reflector.js';
import { KUBELET_WATCH } from './kubelet/backoff.js';
import { sleep, waitAtMost } from '../common/time.js';

// The local volume provisioner (KUBERNETES.md "Volumes from volumeClaimTemplates"): a default
// StorageClass `local` with WaitForFirstConsumer; for every claim the scheduler placed on this
// node, a PV `pvc-<uid>` whose local.path is a directory under `volumesDir` (it outlives pods and
// scale-downs); Released PVs are deleted with their directory.

export const PROVISIONER = 'shoal.dev/local';
export const STORAGE_CLASS = 'local';
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const STORAGE_PROVISIONER = 'volume.beta.kubernetes.io/storage-provisioner';
const PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';

export interface ProvisionerOptions {
  /** A kubeconfig allowed to create StorageClasses and PVs and to watch PVCs (the admin's). */
  kubeconfigPath: string;
  nodeName: string;
  /** One directory per claim is made below it. */
  volumesDir: string;
  logger: Logger;
}

export interface Provisioner {
  stop(): Promise<void>;
}

export function storageClass(): V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: PROVISIONER,
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
  };
}

/** Is this claim ours to provision now? */
export function wantsVolume(pvc: V1PersistentVolumeClaim, nodeName: string): boolean {
  const a = pvc.metadata?.annotations ?? {};
  return (
    a[SELECTED_NODE] === nodeName &&
    a[STORAGE_PROVISIONER] === PROVISIONER &&
    !pvc.spec?.volumeName &&
    pvc.status?.phase === 'Pending' &&
    !pvc.metadata?.deletionTimestamp
  );
}

/** The PV for a claim, as KUBERNETES.md describes what binds. */
export function volumeFor(pvc: V1PersistentVolumeClaim, nodeName: string, dir: string): V1PersistentVolume {
  const uid = pvc.metadata?.uid ?? '';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `pvc-${uid}`, annotations: { [PROVISIONED_BY]: PROVISIONER } },
    spec: {
      capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '1Gi' },
      accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: pvc.spec?.storageClassName ?? STORAGE_CLASS,
      volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata?.namespace ?? '', name: pvc.metadata?.name ?? '', uid },
      local: { path: dir },
      nodeAffinity: {
        required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] }] },
      },
    },
  };
}

export async function startProvisioner(opts: ProvisionerOptions): Promise<Provisioner> {
  const log = opts.logger.child({ node: opts.nodeName, part: 'provisioner' });
  const client = new KubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfigPath }));
  const pvs = persistentVolumes(client);
  const abort = new AbortController();
  const o = { signal: abort.signal };
  await mkdir(opts.volumesDir, { recursive: true });

  try {
    await storageClasses(client).create(storageClass());
    log.info({ storageClass: STORAGE_CLASS }, 'default StorageClass created');
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }

  const claims = new Map<string, V1PersistentVolumeClaim>(); // by uid
  const volumes = new Map<string, V1PersistentVolume>(); // by name
  const busy = new Set<string>();

  const provision = async (pvc: V1PersistentVolumeClaim): Promise<void> => {
    const uid = pvc.metadata?.uid ?? '';
    if (!wantsVolume(pvc, opts.nodeName) || busy.has(uid) || volumes.has(`pvc-${uid}`)) return;
    busy.add(uid);
    try {
      const dir = path.join(opts.volumesDir, `pvc-${uid}`);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await pvs.create(volumeFor(pvc, opts.nodeName, dir), o);
      log.info({ claim: `${pvc.metadata?.namespace}/${pvc.metadata?.name}`, dir }, 'volume provisioned');
    } catch (err) {
      if (!isAlreadyExists(err) && !abort.signal.aborted) log.warn({ err: errorMessage(err) }, 'provisioning failed; will retry');
    } finally {
      busy.delete(uid);
    }
  };

  const reclaim = async (pv: V1PersistentVolume): Promise<void> => {
    const name = pv.metadata?.name ?? '';
    const dir = pv.spec?.local?.path;
    const ours = pv.metadata?.annotations?.[PROVISIONED_BY] === PROVISIONER && dir !== undefined && path.dirname(dir) === opts.volumesDir;
    if (!ours || pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete' || busy.has(name)) return;
    busy.add(name);
    try {
      await rm(dir, { recursive: true, force: true });
      await pvs.delete(name, undefined, o);
      log.info({ volume: name, dir }, 'released volume deleted');
    } catch (err) {
      if (!isNotFound(err) && !abort.signal.aborted) log.warn({ volume: name, err: errorMessage(err) }, 'deleting a released volume failed; will retry');
    } finally {
      busy.delete(name);
    }
  };

  // Keeps `store` equal to the API's objects of one kind and acts on every add and change.
  // Objects that vanished while the watch was down come as DELETED after the re-list.
  const mirror = <T extends KubeObject>(what: string, watchPath: string, key: (o: T) => string, store: Map<string, T>, act: (o: T) => Promise<void>): Promise<void> => {
    const lw = new ListWatch<T>({ what, client, path: watchPath, key, logger: log, ...KUBELET_WATCH });
    lw.on((ev) => {
      if (ev.type === 'SYNCED') return;
      if (ev.type === 'DELETED') store.delete(key(ev.object));
      else {
        store.set(key(ev.object), ev.object);
        void act(ev.object);
      }
    });
    return lw.run(abort.signal);
  };
  const claimWatch = mirror<V1PersistentVolumeClaim>('PersistentVolumeClaims', '/api/v1/persistentvolumeclaims', (c) => c.metadata?.uid ?? '', claims, provision);
  const volumeWatch = mirror<V1PersistentVolume>('PersistentVolumes', '/api/v1/persistentvolumes', (v) => v.metadata?.name ?? '', volumes, reclaim);

  // Retries what failed (API hiccups) without waiting for the next event.
  const resync = (async () => {
    while (!abort.signal.aborted) {
      await sleep(5_000, abort.signal).catch(() => undefined);
      for (const c of claims.values()) void provision(c);
      for (const v of volumes.values()) void reclaim(v);
    }
  })();

  return {
    stop: async () => {
      abort.abort();
      await waitAtMost(Promise.all([claimWatch, volumeWatch, resync]), 5_000);
    },
  };
}
