// Who may call POST /switchover: the pure verdicts over TokenReview / SubjectAccessReview answers,
// the adapter against a fake API server (requests sent, answers cached, failures never a pass),
// and the route's order (401 before the body is read, 400, 403, then the hand-over).
import type { AddressInfo } from 'node:net';
import express from 'express';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { authentication, authorization, describeRight, switchoverRight, type Caller } from '../../agent/http/access.js';
import { mountControlRoutes } from '../../agent/http/control-routes.js';
import { KubeAccess, type CallerAccess } from '../../agent/http/kube-access.js';
import { TtlCache } from '../../agent/util/ttl-cache.js';
import { answerJson, fakeApiServer } from '../support/fake-apiserver.js';

const silent = pino({ level: 'silent' });
const alice: Caller = { username: 'alice', uid: 'u-1', groups: ['ops', 'system:authenticated'], extra: { scopes: ['a'] } };
const right = switchoverRight('prod', 'storage');

describe('authentication (TokenReview → caller)', () => {
  it('names the caller of an authenticated token', () => {
    expect(authentication({ ok: { authenticated: true, user: { username: 'alice', uid: 'u-1', groups: ['ops', 'system:authenticated'], extra: { scopes: ['a'] } } } })).toEqual({ allowed: true, caller: alice });
  });
  it.each([
    ['not authenticated', { authenticated: false, error: 'token expired' }, /not a valid Kubernetes token.*token expired/],
    ['authenticated without a user name', { authenticated: true, user: {} }, /not a valid Kubernetes token/],
    ['an empty status', {}, /not a valid Kubernetes token/],
  ])('401 when %s', (_w, status, reason) => {
    expect(authentication({ ok: status })).toMatchObject({ allowed: false, status: 401, reason: expect.stringMatching(reason) });
  });
  it('503, never a pass, when the API server does not answer', () => {
    expect(authentication({ failed: 'create a TokenReview: HTTP 500' })).toMatchObject({ allowed: false, status: 503, reason: expect.stringMatching(/TokenReview failed.*nothing was moved/) });
  });
});

describe('authorization (SubjectAccessReview → right)', () => {
  it('names the right', () => {
    expect(describeRight(right)).toBe('update statefulsets.apps/storage in namespace prod');
  });
  it('allows what the review allows', () => {
    expect(authorization(alice, right, { ok: { allowed: true } })).toEqual({ allowed: true, reason: 'alice may update statefulsets.apps/storage in namespace prod' });
  });
  it.each([
    ['not allowed', { allowed: false }],
    ['explicitly denied', { allowed: true, denied: true }],
    ['not allowed with an evaluation error', { allowed: false, evaluationError: 'rbac: role not found' }],
  ])('403 naming the missing right when %s', (_w, status) => {
    const v = authorization(alice, right, { ok: status });
    expect(v).toMatchObject({ allowed: false, status: 403, reason: expect.stringContaining('alice may not update statefulsets.apps/storage in namespace prod') });
  });
  it('503, never a pass, when the API server does not answer', () => {
    expect(authorization(alice, right, { failed: 'Timeout' })).toMatchObject({ allowed: false, status: 503 });
  });
});

describe('TtlCache', () => {
  it('forgets after the time and keeps at most its size, dropping the oldest', () => {
    let now = 0;
    const c = new TtlCache<number>(10, 2, () => now);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect([c.get('a'), c.get('b'), c.get('c'), c.size]).toEqual([undefined, 2, 3, 2]);
    now = 10;
    expect(c.get('b')).toBeUndefined();
    expect(() => new TtlCache(0, 1)).toThrow(/positive/);
  });
});

describe('KubeAccess against the API server', () => {
  const { start } = fakeApiServer();
  const signal = (): AbortSignal => new AbortController().signal;

  it('reviews the token, then the right of the user it names; answers are cached, keyed by the token', async () => {
    const bodies: Array<{ path: string; body: unknown }> = [];
    let now = 0;
    const client = await start((req, res, url, body) => {
      bodies.push({ path: `${req.method} ${url.pathname}`, body: JSON.parse(body) });
      if (url.pathname.endsWith('/tokenreviews')) {
        const token = (JSON.parse(body) as { spec: { token: string } }).spec.token;
        return answerJson(res, { status: token === 'good' ? { authenticated: true, user: { username: 'alice', uid: 'u-1', groups: ['ops', 'system:authenticated'], extra: { scopes: ['a'] } } } : { authenticated: false, error: 'invalid bearer token' } }, 201);
      }
      return answerJson(res, { status: { allowed: false, reason: 'no RBAC policy matched' } }, 201);
    });
    const access = new KubeAccess({ client, logger: silent, ttlMs: 10_000, now: () => now });
    const who = await access.authenticate('Bearer good', signal());
    expect(who).toEqual({ allowed: true, caller: alice });
    expect(await access.authorize(alice, right, signal())).toMatchObject({ allowed: false, status: 403, reason: expect.stringContaining('(no RBAC policy matched)') });
    expect(bodies).toEqual([
      { path: 'POST /apis/authentication.k8s.io/v1/tokenreviews', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'good' } } },
      {
        path: 'POST /apis/authorization.k8s.io/v1/subjectaccessreviews',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: 'alice', uid: 'u-1', groups: ['ops', 'system:authenticated'], extra: { scopes: ['a'] }, resourceAttributes: { verb: 'update', group: 'apps', resource: 'statefulsets', namespace: 'prod', name: 'storage' } },
        },
      },
    ]);
    // Cached: positive and negative answers alike, for the TTL.
    expect((await access.authenticate('Bearer bad', signal())).allowed).toBe(false);
    await access.authenticate('Bearer good', signal());
    await access.authenticate('Bearer bad', signal());
    await access.authorize(alice, right, signal());
    expect(bodies).toHaveLength(3);
    now = 10_001;
    await access.authenticate('Bearer good', signal());
    expect(bodies).toHaveLength(4);
  });

  it('answers 401 without asking when there is no bearer token', async () => {
    let asked = 0;
    const client = await start((_req, res) => (asked++, answerJson(res, {}, 500)));
    const access = new KubeAccess({ client, logger: silent });
    for (const header of [undefined, '', 'Basic abc', 'Bearer']) expect(await access.authenticate(header, signal())).toMatchObject({ allowed: false, status: 401 });
    expect(asked).toBe(0);
  });

  it('answers 503 when the API server fails, and asks again next time (failures are not cached)', async () => {
    let asked = 0;
    const client = await start((_req, res) => (asked++, answerJson(res, { kind: 'Status', reason: 'Forbidden', message: 'cannot create tokenreviews' }, 403)));
    const access = new KubeAccess({ client, logger: silent });
    expect(await access.authenticate('Bearer good', signal())).toMatchObject({ allowed: false, status: 503, reason: expect.stringContaining('cannot create tokenreviews') });
    expect(await access.authorize(alice, right, signal())).toMatchObject({ allowed: false, status: 503 });
    await access.authenticate('Bearer good', signal());
    expect(asked).toBe(3);
  });

  it('is bounded: a silent API server is a 503 after the timeout', async () => {
    const client = await start(() => undefined); // never answers
    const access = new KubeAccess({ client, logger: silent, timeoutMs: 100 });
    expect(await access.authenticate('Bearer good', signal())).toMatchObject({ allowed: false, status: 503, reason: expect.stringContaining('Timeout') });
  });
});

describe('POST /switchover route', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function serve(access: CallerAccess): Promise<{ url: string; calls: unknown[] }> {
    const app = express();
    const calls: unknown[] = [];
    mountControlRoutes(app, {
      access,
      namespace: 'prod',
      switchover: async (req, caller) => (calls.push({ req, caller }), { status: 200, body: { ok: true } }),
      prestop: async () => ({ status: 200, body: {} }),
      switchoverTimeoutMs: 5_000,
      prestopTimeoutMs: 5_000,
      forwardedHeader: 'x-shoal-forwarded-by',
      logger: silent,
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    close = () => new Promise((r) => server.close(() => r()));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/switchover`, calls };
  }

  const fakeAccess: CallerAccess = {
    authenticate: async (h) => (h === 'Bearer alice' ? { allowed: true, caller: alice } : { allowed: false, status: 401, reason: 'who?' }),
    authorize: async (c, r) => (r.name === 'storage' ? { allowed: true, reason: 'ok' } : { allowed: false, status: 403, reason: `${c.username} may not ${describeRight(r)}` }),
  };
  const post = (url: string, body: string, auth?: string): Promise<Response> =>
    fetch(url, { method: 'POST', body, headers: auth ? { authorization: auth } : {} });

  it('401 (with WWW-Authenticate) before the body is looked at, 400, 403, then the hand-over with the caller', async () => {
    const { url, calls } = await serve(fakeAccess);
    const anon = await post(url, 'nonsense');
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Bearer realm="shoal"');
    expect((await post(url, 'nonsense', 'Bearer alice')).status).toBe(400);
    const denied = await post(url, '{"replicaset":"other"}', 'Bearer alice');
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ ok: false, reason: 'alice may not update statefulsets.apps/other in namespace prod' });
    expect(calls).toEqual([]);
    expect((await post(url, '{"replicaset":"storage","to":"storage-1"}', 'Bearer alice')).status).toBe(200);
    expect(calls).toEqual([{ req: { replicaset: 'storage', to: 'storage-1', requestedBy: 'POST /switchover by alice' }, caller: { authorization: 'Bearer alice', forwardedBy: null } }]);
  });
});
