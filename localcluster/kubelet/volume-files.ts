import path from 'node:path';
import type { V1DownwardAPIVolumeFile, V1KeyToPath } from '@kubernetes/client-node';
import { fieldRefValue, type PodFacts } from './env.js';

// Which files a secret, configMap or downwardAPI volume holds (pure): relative path, bytes, mode.

export interface VolumeFile {
  path: string;
  data: Buffer;
  mode: number;
}

export type FilesResult = { ok: true; files: VolumeFile[] } | { ok: false; message: string };

const DEFAULT_MODE = 0o644;

/** A relative path that stays inside the volume (no `..`, not absolute), as the API validates. */
function safeRelative(p: string): boolean {
  return p.length > 0 && !path.posix.isAbsolute(p) && !p.split('/').includes('..');
}

/**
 * Files of a Secret or ConfigMap volume: every key (no `items`) or only the listed keys at their
 * paths. A missing object or listed key fails unless `optional`.
 */
export function keyFiles(
  kind: 'secret' | 'configmap',
  name: string,
  data: Record<string, Buffer> | null | undefined,
  items: V1KeyToPath[] | undefined,
  defaultMode: number | undefined,
  optional: boolean | undefined,
): FilesResult {
  const mode = defaultMode ?? DEFAULT_MODE;
  if (!data) {
    return optional ? { ok: true, files: [] } : { ok: false, message: `${kind} "${name}" not found` };
  }
  if (!items || items.length === 0) {
    return { ok: true, files: Object.keys(data).sort().map((k) => ({ path: k, data: data[k] as Buffer, mode })) };
  }
  const files: VolumeFile[] = [];
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional) continue;
      return { ok: false, message: `key "${item.key}" not found in ${kind} "${name}"` };
    }
    if (!safeRelative(item.path)) return { ok: false, message: `invalid item path "${item.path}"` };
    files.push({ path: item.path, data: value, mode: item.mode ?? mode });
  }
  return { ok: true, files };
}

/** Files of a downwardAPI volume (fieldRef items; resourceFieldRef is not modelled). */
export function downwardFiles(items: V1DownwardAPIVolumeFile[] | undefined, facts: PodFacts, defaultMode: number | undefined): FilesResult {
  const files: VolumeFile[] = [];
  for (const item of items ?? []) {
    if (!safeRelative(item.path)) return { ok: false, message: `invalid item path "${item.path}"` };
    if (!item.fieldRef) return { ok: false, message: `downwardAPI item ${item.path}: only fieldRef is supported by the process kubelet` };
    const value = fieldRefValue(facts, item.fieldRef.fieldPath);
    if (value === undefined) return { ok: false, message: `downwardAPI item ${item.path}: unsupported fieldPath ${item.fieldRef.fieldPath}` };
    files.push({ path: item.path, data: Buffer.from(value), mode: item.mode ?? defaultMode ?? DEFAULT_MODE });
  }
  return { ok: true, files };
}
