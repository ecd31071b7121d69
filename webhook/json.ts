// Small guards and helpers for untrusted JSON: an AdmissionReview can hold anything, and the webhook
// must answer every input with a message instead of a TypeError.

import { isRecord } from '../common/json.js';

export { isRecord, type JsonRecord } from '../common/json.js';

/** A map of string values (labels, annotations), or null when `value` is not one. Absent = {}. */
export function stringMap(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) return null;
  for (const v of Object.values(value)) if (typeof v !== 'string') return null;
  return value as Record<string, string>;
}

/** Deep equality of two JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
}
