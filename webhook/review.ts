// AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out. Pure: the server only moves bytes.
import { jsonPatch } from './patch.js';
import { errorMessage } from '../common/errors.js';
import { isRecord, type JsonRecord } from './json.js';
import { mutatePod, mutateStatefulSet, type InjectOptions, type Mutation } from './inject.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export type Endpoint = 'pods' | 'statefulsets';
/** Metric and log label: what the webhook answered. */
export type Outcome = 'patched' | 'allowed' | 'refused' | 'bad-request' | 'error';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: string;
  name?: string;
  namespace?: string;
  object?: unknown;
  oldObject?: unknown;
}

export interface ReviewResult {
  /** HTTP status: 200 for every AdmissionReview, 400 for a body that is not one. */
  status: number;
  body: JsonRecord;
  outcome: Outcome;
  /** Fields for the request's log line. */
  log: { uid?: string; kind?: string; operation?: string; namespace?: string; name?: string; reason?: string; message?: string; ops?: number };
}

const EXPECTED: Record<Endpoint, { group: string; kind: string; operations: string[] }> = {
  pods: { group: '', kind: 'Pod', operations: ['CREATE'] },
  statefulsets: { group: 'apps', kind: 'StatefulSet', operations: ['CREATE', 'UPDATE'] },
};

/** Either the request of a well-formed AdmissionReview or a sentence saying what is wrong with the body. */
export function parseAdmissionReview(body: unknown): { ok: true; request: AdmissionRequest } | { ok: false; message: string } {
  const bad = (message: string) => ({ ok: false as const, message });
  if (!isRecord(body)) return bad('the body is not a JSON object: send an admission.k8s.io/v1 AdmissionReview');
  if (body.kind !== 'AdmissionReview') {
    return bad(`kind is ${JSON.stringify(body.kind ?? null)}, expected "AdmissionReview"`);
  }
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    return bad(
      `apiVersion is ${JSON.stringify(body.apiVersion ?? null)}; Shoal speaks only ${ADMISSION_API_VERSION} ` +
        '(set admissionReviewVersions: [v1] in the MutatingWebhookConfiguration)',
    );
  }
  const r = body.request;
  if (!isRecord(r)) return bad('the AdmissionReview has no "request" object');
  if (typeof r.uid !== 'string' || r.uid === '') return bad('request.uid is missing: it must be echoed in the response');
  const k = r.kind;
  if (!isRecord(k) || typeof k.kind !== 'string' || typeof (k.group ?? '') !== 'string') {
    return bad('request.kind must be an object {group, version, kind}');
  }
  if (typeof r.operation !== 'string') return bad('request.operation is missing');
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    ok: true,
    request: {
      uid: r.uid,
      kind: { group: str(k.group) ?? '', version: str(k.version) ?? '', kind: k.kind },
      operation: r.operation,
      name: str(r.name),
      namespace: str(r.namespace),
      object: r.object,
      oldObject: r.oldObject,
    },
  };
}

/** The AdmissionReview answer for a mutation of `before`. */
export function admissionResponse(uid: string, before: unknown, m: Mutation): { body: JsonRecord; ops: number } {
  const response: JsonRecord = { uid, allowed: m.allowed };
  let ops = 0;
  if (m.allowed) {
    const patch = m.object === before ? [] : jsonPatch(before, m.object);
    ops = patch.length;
    if (ops > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
    }
    if (m.warnings.length > 0) response.warnings = m.warnings;
  } else {
    response.status = { code: 422, reason: 'Invalid', message: m.message };
  }
  return { body: { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response }, ops };
}

function objectName(req: AdmissionRequest): string | undefined {
  if (req.name) return req.name;
  const meta = isRecord(req.object) ? req.object.metadata : undefined;
  if (!isRecord(meta)) return undefined;
  const n = meta.name ?? meta.generateName;
  return typeof n === 'string' ? n : undefined;
}

/** The mutation and the object its patch is taken against. */
function decide(endpoint: Endpoint, req: AdmissionRequest, opts: InjectOptions): { m: Mutation; before: unknown } {
  const expected = EXPECTED[endpoint];
  if (req.kind.kind !== expected.kind || req.kind.group !== expected.group) {
    const got = `${req.kind.group || 'core'}/${req.kind.kind}`;
    const message = `Shoal's /mutate/${endpoint} takes ${expected.kind} objects, but got ${got}: fix the rules of the MutatingWebhookConfiguration`;
    return { m: { allowed: false, message }, before: req.object };
  }
  if (!expected.operations.includes(req.operation)) {
    const untouched = {};
    return { m: { allowed: true, object: untouched, reason: `${req.operation} is not mutated`, warnings: [] }, before: untouched };
  }
  if (!isRecord(req.object)) return { m: { allowed: false, message: 'request.object is missing or not an object' }, before: req.object };
  const m =
    endpoint === 'pods'
      ? mutatePod(req.object, opts)
      : mutateStatefulSet(req.object, opts, req.operation === 'UPDATE' ? req.oldObject : undefined);
  return { m, before: req.object };
}

/** Answers one request body. Never throws: every input gets a reply. */
export function handleReview(endpoint: Endpoint, body: unknown, opts: InjectOptions): ReviewResult {
  const parsed = parseAdmissionReview(body);
  if (!parsed.ok) return { status: 400, body: { message: parsed.message }, outcome: 'bad-request', log: { message: parsed.message } };
  const req = parsed.request;
  const log: ReviewResult['log'] = {
    uid: req.uid,
    kind: req.kind.kind,
    operation: req.operation,
    namespace: req.namespace,
    name: objectName(req),
  };
  let m: Mutation;
  let answer: { body: JsonRecord; ops: number };
  let outcome: Outcome | undefined;
  try {
    const d = decide(endpoint, req, opts);
    m = d.m;
    answer = admissionResponse(req.uid, d.before, m);
  } catch (err) {
    // A bug in Shoal must not fail the API server's request with a bare 500: refuse with the reason.
    m = { allowed: false, message: `the Shoal webhook failed on this object (${errorMessage(err)}); please report it` };
    answer = admissionResponse(req.uid, req.object, m);
    outcome = 'error';
  }
  const { body: reply, ops } = answer;
  outcome ??= !m.allowed ? 'refused' : ops > 0 ? 'patched' : 'allowed';
  return {
    status: 200,
    body: reply,
    outcome,
    log: { ...log, ops, ...(m.allowed ? { reason: m.reason } : { message: m.message }) },
  };
}
