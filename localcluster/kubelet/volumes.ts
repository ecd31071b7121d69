import { chmod, chown, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { V1Pod, V1Volume } from '@kubernetes/client-node';
import type { PodFacts } from './env.js';
import { downwardFiles, keyFiles, type FilesResult, type VolumeFile } from './volume-files.js';

// Materialises a pod's volumes as host directories (shown to its processes by bind mounts).

export interface FetchedObjects {
  secrets: Map<string, Record<string, Buffer> | null>;
  configMaps: Map<string, Record<string, Buffer> | null>;
}

export interface VolumeContext {
  pod: V1Pod;
  facts: PodFacts;
  /** `<podDir>/volumes/<name>` holds emptyDirs and projected files. */
  podDir: string;
  unixUid: number;
  objects: FetchedObjects;
  /** Host directory of a bound PVC (throws while it is not bound yet). */
  claimPath(claimName: string): Promise<string>;
  /** A token from the TokenRequest API for a projected serviceAccountToken source. */
  serviceAccountToken(audience: string | undefined, expirationSeconds: number | undefined): Promise<string>;
}

/** A volume that cannot be set up (yet): the pod waits in ContainerCreating with this message. */
export class VolumeError extends Error {
  override name = 'VolumeError';
}

/** Gives the pod's uid every file below `dir` (its processes run as that uid, not as root). */
export async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, uid);
    else await chown(p, uid, uid).catch(() => undefined); // dangling symlinks, sockets gone
  }
}

async function writeFiles(dir: string, files: VolumeFile[], uid: number): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const f of files) {
    const p = path.join(dir, f.path);
    await mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
    await writeFile(p, f.data, { mode: f.mode });
    await chmod(p, f.mode); // writeFile's mode is filtered by the umask
  }
  // In a real container the process usually runs as root and reads any mode; here it runs as the
  // pod's uid, so that uid owns the files (the mount may still be read-only).
  await chownTree(dir, uid);
}

function unwrap(r: FilesResult): VolumeFile[] {
  if (!r.ok) throw new VolumeError(r.message);
  return r.files;
}

async function projectedFiles(v: V1Volume, ctx: VolumeContext): Promise<VolumeFile[]> {
  const mode = v.projected?.defaultMode;
  const files: VolumeFile[] = [];
  for (const src of v.projected?.sources ?? []) {
    if (src.secret) {
      const name = src.secret.name ?? '';
      files.push(...unwrap(keyFiles('secret', name, ctx.objects.secrets.get(name), src.secret.items, mode, src.secret.optional)));
    } else if (src.configMap) {
      const name = src.configMap.name ?? '';
      files.push(...unwrap(keyFiles('configmap', name, ctx.objects.configMaps.get(name), src.configMap.items, mode, src.configMap.optional)));
    } else if (src.downwardAPI) {
      files.push(...unwrap(downwardFiles(src.downwardAPI.items, ctx.facts, mode)));
    } else if (src.serviceAccountToken) {
      const t = src.serviceAccountToken;
      const token = await ctx.serviceAccountToken(t.audience, t.expirationSeconds);
      files.push({ path: t.path, data: Buffer.from(token), mode: mode ?? 0o644 });
    }
  }
  return files;
}

async function materialize(v: V1Volume, ctx: VolumeContext): Promise<string> {
  const dir = path.join(ctx.podDir, 'volumes', v.name);
  if (v.emptyDir) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o777); // emptyDir is world-writable, as the kubelet creates it
    await chown(dir, ctx.unixUid, ctx.unixUid);
    return dir;
  }
  if (v.secret) {
    const name = v.secret.secretName ?? '';
    const files = unwrap(keyFiles('secret', name, ctx.objects.secrets.get(name), v.secret.items, v.secret.defaultMode, v.secret.optional));
    await writeFiles(dir, files, ctx.unixUid);
    return dir;
  }
  if (v.configMap) {
    const name = v.configMap.name ?? '';
    const files = unwrap(keyFiles('configmap', name, ctx.objects.configMaps.get(name), v.configMap.items, v.configMap.defaultMode, v.configMap.optional));
    await writeFiles(dir, files, ctx.unixUid);
    return dir;
  }
  if (v.downwardAPI) {
    await writeFiles(dir, unwrap(downwardFiles(v.downwardAPI.items, ctx.facts, v.downwardAPI.defaultMode)), ctx.unixUid);
    return dir;
  }
  if (v.projected) {
    await writeFiles(dir, await projectedFiles(v, ctx), ctx.unixUid);
    return dir;
  }
  if (v.persistentVolumeClaim) {
    const hostDir = await ctx.claimPath(v.persistentVolumeClaim.claimName);
    // A recreated pod has another uid: hand it the data the previous one wrote.
    await chownTree(hostDir, ctx.unixUid);
    return hostDir;
  }
  if (v.hostPath) {
    const p = v.hostPath.path;
    const type = v.hostPath.type ?? '';
    if (type === 'DirectoryOrCreate') await mkdir(p, { recursive: true });
    else if (type === 'Directory' || type === 'File') {
      const st = await stat(p).catch(() => undefined);
      if (!st || (type === 'Directory' ? !st.isDirectory() : !st.isFile())) throw new VolumeError(`hostPath ${p} is not a ${type.toLowerCase()}`);
    }
    return p;
  }
  throw new VolumeError(`volume "${v.name}": this volume type is not supported by the process kubelet`);
}

/** Volume name → host directory, for every volume of the pod. Throws VolumeError while one is not ready. */
export async function materializeVolumes(ctx: VolumeContext): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const v of ctx.pod.spec?.volumes ?? []) out[v.name] = await materialize(v, ctx);
  return out;
}

/** TokenRequest's default lifetime when a source names none (the API's own default). */
const DEFAULT_TOKEN_SECONDS = 3600;

/**
 * When the pod's projected ServiceAccount tokens must be fetched again, in ms after they were
 * written: at 80 % of the shortest lifetime, as the real kubelet's token manager refreshes them
 * (pkg/kubelet/token). null when the pod has no such source. Pure.
 */
export function tokenRefreshDelayMs(pod: V1Pod): number | null {
  const lifetimes = (pod.spec?.volumes ?? []).flatMap((v) => (v.projected?.sources ?? []).filter((s) => s.serviceAccountToken).map((s) => s.serviceAccountToken?.expirationSeconds ?? DEFAULT_TOKEN_SECONDS));
  return lifetimes.length === 0 ? null : Math.round(Math.min(...lifetimes) * 0.8 * 1000);
}

/**
 * Rewrites every projected volume that holds a ServiceAccount token with fresh tokens, each file
 * replaced by a rename in its directory (the directory the pod's bind mount shows stays the same,
 * and a reader sees the old file or the new one, never half of one). Returns the volumes rewritten.
 */
export async function refreshTokenVolumes(ctx: VolumeContext, dirs: Record<string, string>): Promise<string[]> {
  const done: string[] = [];
  for (const v of ctx.pod.spec?.volumes ?? []) {
    const dir = dirs[v.name];
    if (!dir || !(v.projected?.sources ?? []).some((s) => s.serviceAccountToken)) continue;
    for (const f of await projectedFiles(v, ctx)) {
      const p = path.join(dir, f.path);
      const tmp = path.join(path.dirname(p), `.${path.basename(p)}.refresh`);
      await writeFile(tmp, f.data, { mode: f.mode });
      await chmod(tmp, f.mode);
      await chown(tmp, ctx.unixUid, ctx.unixUid);
      await rename(tmp, p);
    }
    done.push(v.name);
  }
  return done;
}
