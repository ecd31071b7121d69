// Who may call POST /switchover, decided the way kube-rbac-proxy decides it: the caller's bearer
// token goes through a TokenReview (authentication), the user it names through a
// SubjectAccessReview for `update` on the StatefulSet of the replica set (authorization). Pure: the
// API answers (or the failure to get one) come in, a verdict with its one-line reason goes out.
// Never allows on an error: an API server that cannot answer is 503, not a pass.
import type { V1SubjectAccessReviewStatus, V1TokenReviewStatus, V1UserInfo } from '@kubernetes/client-node';

/** What a caller must be allowed to do to move a replica set's master. */
export interface Right {
  verb: string;
  group: string;
  resource: string;
  namespace: string;
  name: string;
}

/** The right behind a switchover: `update` on the replica set's StatefulSet. */
export const switchoverRight = (namespace: string, statefulset: string): Right => ({ verb: 'update', group: 'apps', resource: 'statefulsets', namespace, name: statefulset });

/** "update statefulsets.apps/storage in namespace default": how a reason names a right. */
export function describeRight(r: Right): string {
  return `${r.verb} ${r.resource}${r.group ? `.${r.group}` : ''}/${r.name} in namespace ${r.namespace}`;
}

/** An API call's answer, or why none came (unreachable, timed out, refused by the API server). */
export type Answer<T> = { ok: T } | { failed: string };

/** A caller the API server authenticated. */
export interface Caller {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type Refusal = { allowed: false; status: 401 | 403 | 503; reason: string };
export type Authenticated = { allowed: true; caller: Caller } | Refusal;
export type Authorized = { allowed: true; reason: string } | Refusal;

export const NO_TOKEN: Refusal = {
  allowed: false,
  status: 401,
  reason: 'no bearer token: send "Authorization: Bearer <token>" with a Kubernetes token (e.g. a ServiceAccount\'s) whose user may update the replica set\'s StatefulSet',
};

function callerOf(user: V1UserInfo | undefined): Caller | null {
  if (!user?.username) return null;
  return { username: user.username, uid: user.uid ?? '', groups: [...(user.groups ?? [])], extra: { ...(user.extra ?? {}) } };
}

/** The TokenReview's answer → the caller, or 401 (not authenticated) / 503 (no answer). */
export function authentication(review: Answer<V1TokenReviewStatus>): Authenticated {
  if ('failed' in review) return { allowed: false, status: 503, reason: `cannot check the bearer token: the TokenReview failed (${review.failed}); nothing was moved, retry` };
  const caller = review.ok.authenticated === true ? callerOf(review.ok.user) : null;
  if (caller === null) {
    const why = review.ok.error ? `: ${review.ok.error}` : '';
    return { allowed: false, status: 401, reason: `the bearer token is not a valid Kubernetes token (the API server did not authenticate it${why})` };
  }
  return { allowed: true, caller };
}

/** The SubjectAccessReview's answer → allowed, or 403 (naming the missing right) / 503 (no answer). */
export function authorization(caller: Caller, right: Right, review: Answer<V1SubjectAccessReviewStatus>): Authorized {
  const what = describeRight(right);
  if ('failed' in review) return { allowed: false, status: 503, reason: `cannot check whether ${caller.username} may ${what}: the SubjectAccessReview failed (${review.failed}); nothing was moved, retry` };
  if (review.ok.allowed === true && review.ok.denied !== true) return { allowed: true, reason: `${caller.username} may ${what}` };
  const detail = [review.ok.reason, review.ok.evaluationError].filter((s): s is string => typeof s === 'string' && s !== '').join('; ');
  return { allowed: false, status: 403, reason: `${caller.username} may not ${what}, which a switchover needs${detail ? ` (${detail})` : ''}` };
}
