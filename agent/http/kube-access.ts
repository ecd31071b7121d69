// The effects behind access.ts: TokenReview and SubjectAccessReview through common/kube, each call
// bounded and cancellable, each answer (positive or negative) cached briefly so that a burst of
// requests, or a request forwarded to the coordinator and checked again there, asks the API server
// once. Failures (503) are never cached: the next request asks again.
import { createHash } from 'node:crypto';
import { errorMessage } from '../../common/errors.js';
import type { KubeClient } from '../../common/kube/client.js';
import { reviewAccess, reviewToken } from '../../common/kube/resources.js';
import type { Logger } from '../../common/log.js';
import { bearerToken } from '../../common/token.js';
import { TtlCache } from '../util/ttl-cache.js';
import { authentication, authorization, NO_TOKEN, type Answer, type Authenticated, type Authorized, type Caller, type Right } from './access.js';

/** What the /switchover route needs: who the caller is, and whether they hold a right. */
export interface CallerAccess {
  authenticate(authorizationHeader: string | undefined, signal: AbortSignal): Promise<Authenticated>;
  authorize(caller: Caller, right: Right, signal: AbortSignal): Promise<Authorized>;
}

export interface KubeAccessOptions {
  client: KubeClient;
  logger: Logger;
  /** How long an answer is reused. Default 10 s. */
  ttlMs?: number;
  /** Bound of each cache (entries). Default 1024. */
  maxEntries?: number;
  /** Bound of one review call. Default 5 s. */
  timeoutMs?: number;
  now?: () => number;
}

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** Runs `call`; its failure becomes an Answer's `failed` text (the caller's own abort is rethrown). */
async function answer<T>(call: () => Promise<T>, signal: AbortSignal): Promise<Answer<T>> {
  try {
    return { ok: await call() };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return { failed: errorMessage(err) };
  }
}

export class KubeAccess implements CallerAccess {
  private readonly tokens: TtlCache<Authenticated>;
  private readonly rights: TtlCache<Authorized>;
  private readonly timeoutMs: number;

  constructor(private readonly o: KubeAccessOptions) {
    const ttl = o.ttlMs ?? 10_000;
    const max = o.maxEntries ?? 1024;
    this.tokens = new TtlCache(ttl, max, o.now);
    this.rights = new TtlCache(ttl, max, o.now);
    this.timeoutMs = o.timeoutMs ?? 5_000;
  }

  async authenticate(header: string | undefined, signal: AbortSignal): Promise<Authenticated> {
    const token = bearerToken(header);
    if (token === undefined) return NO_TOKEN;
    const key = sha256(token); // the token itself is never kept
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const verdict = authentication(await answer(() => reviewToken(this.o.client, token, { signal, timeoutMs: this.timeoutMs }), signal));
    if (verdict.allowed || verdict.status !== 503) this.tokens.set(key, verdict);
    if (!verdict.allowed) this.o.logger.warn({ status: verdict.status, reason: verdict.reason }, 'a /switchover caller was not authenticated');
    return verdict;
  }

  async authorize(caller: Caller, right: Right, signal: AbortSignal): Promise<Authorized> {
    const key = sha256(JSON.stringify([caller, right]));
    const cached = this.rights.get(key);
    if (cached) return cached;
    const spec = {
      user: caller.username,
      uid: caller.uid,
      groups: caller.groups,
      extra: caller.extra,
      resourceAttributes: { verb: right.verb, group: right.group, resource: right.resource, namespace: right.namespace, name: right.name },
    };
    const verdict = authorization(caller, right, await answer(() => reviewAccess(this.o.client, spec, { signal, timeoutMs: this.timeoutMs }), signal));
    if (verdict.allowed || verdict.status !== 503) this.rights.set(key, verdict);
    this.o.logger[verdict.allowed ? 'info' : 'warn']({ user: caller.username, allowed: verdict.allowed, reason: verdict.reason }, 'checked a /switchover caller\'s right');
    return verdict;
  }
}
