// The one guard for "a JSON object": untrusted input (AdmissionReviews, mesh frames, console replies,
// API server bodies) is checked with it before any field is read.

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
