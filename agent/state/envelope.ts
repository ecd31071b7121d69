// The value stored in the state ConfigMap: a versioned envelope owned by the store (schema, term,
// coordinator) around the coordinator's own state, which a caller-supplied decoder validates.
// The term lives in the envelope so the store can fence writes by term without knowing the state.
import { ShoalError, errorMessage } from '../../common/errors.js';

/** The ConfigMap data key. JSON, so `kubectl get cm shoal-<cluster>-state -o yaml` stays readable. */
export const STATE_KEY = 'state.json';
/** The schema this code writes. Raise it with a migration in decodeEnvelope when the envelope changes. */
export const STATE_SCHEMA = 1;

export interface Envelope<S> {
  schema: number;
  /** Grows by one with every new coordinator; commands carry it, agents refuse older ones. */
  term: number;
  /** The pod that holds `term` ('' before the first coordinator). */
  coordinator: string;
  /** Wall-clock time of the last write, for humans only. */
  updatedAt: string;
  state: S;
}

/** Validates and returns the coordinator's state; throws (any Error) with a message saying what is wrong. */
export type StateDecoder<S> = (raw: unknown) => S;

export interface ConfigMapRef {
  namespace: string;
  name: string;
}

/** A stored value that cannot be used: never overwritten blindly, reported with how to fix it. */
export class StateCorruptError extends ShoalError {
  constructor(where: ConfigMapRef, problem: string, options?: { cause?: unknown }) {
    super(
      `the Shoal state in ConfigMap ${where.namespace}/${where.name} (key ${STATE_KEY}) is unusable: ${problem}`,
      `inspect it with \`kubectl -n ${where.namespace} get configmap ${where.name} -o yaml\`; repair the JSON, or delete the key to let the coordinator rebuild it from the running instances`,
      options,
    );
    this.name = 'StateCorruptError';
  }
}

export function encodeEnvelope<S>(env: Envelope<S>): string {
  return JSON.stringify(env);
}

export function decodeEnvelope<S>(text: string, decode: StateDecoder<S>, configMap: ConfigMapRef): Envelope<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StateCorruptError(configMap, `not JSON (${errorMessage(err)})`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new StateCorruptError(configMap, 'not a JSON object');
  const r = raw as Record<string, unknown>;
  if (typeof r.schema !== 'number' || !Number.isInteger(r.schema) || r.schema < 1) {
    throw new StateCorruptError(configMap, `"schema" must be a positive integer, got ${JSON.stringify(r.schema)}`);
  }
  if (r.schema > STATE_SCHEMA) {
    throw new ShoalError(
      `the Shoal state in ConfigMap ${configMap.namespace}/${configMap.name} has schema ${r.schema}, newer than this agent understands (${STATE_SCHEMA})`,
      'finish rolling out the newer Shoal agent image, or roll every agent back together',
    );
  }
  if (typeof r.term !== 'number' || !Number.isSafeInteger(r.term) || r.term < 0) {
    throw new StateCorruptError(configMap, `"term" must be a non-negative integer, got ${JSON.stringify(r.term)}`);
  }
  if (typeof r.coordinator !== 'string') throw new StateCorruptError(configMap, '"coordinator" must be a string');
  let state: S;
  try {
    state = decode(r.state);
  } catch (err) {
    throw new StateCorruptError(configMap, `"state" is invalid: ${errorMessage(err)}`, { cause: err });
  }
  return {
    schema: STATE_SCHEMA,
    term: r.term,
    coordinator: r.coordinator,
    updatedAt: typeof r.updatedAt === 'string' ? r.updatedAt : '',
    state,
  };
}
