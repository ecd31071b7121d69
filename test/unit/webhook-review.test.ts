import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { V1Pod } from '@kubernetes/client-node';
import { handleReview, parseAdmissionReview } from '../../webhook/review.js';
import { applied, OPTS, review, statefulSet, stsPod, type ReviewResponse } from '../support/webhook-fixtures.js';

const response = (body: Record<string, unknown>) => body.response as ReviewResponse;

describe('handleReview', () => {
  it('answers a labelled pod with a base64 JSON Patch that injects, echoing the uid', () => {
    const req = review('Pod', stsPod());
    const r = handleReview('pods', req, OPTS);
    expect(r.status).toBe(200);
    expect(r.outcome).toBe('patched');
    expect(r.body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    const res = response(r.body);
    expect(res).toMatchObject({ uid: (req.request as { uid: string }).uid, allowed: true, patchType: 'JSONPatch' });
    const pod = applied(stsPod(), res);
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['shoal-install', 'shoal-agent']);
    expect(pod.metadata!.annotations).toEqual({ 'shoal.dev/injected': '9.9.9' });
    // The patched pod, reviewed again (reinvocation), gets no patch.
    const again = handleReview('pods', review('Pod', pod), OPTS);
    expect(again.outcome).toBe('allowed');
    expect(response(again.body)).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('patches a labelled StatefulSet on CREATE and gives the patched one no patch on UPDATE', () => {
    const r = handleReview('statefulsets', review('StatefulSet', statefulSet()), OPTS);
    const sts = applied(statefulSet(), response(r.body));
    expect(sts.spec!.updateStrategy).toEqual({ type: 'OnDelete' });
    const u = handleReview('statefulsets', review('StatefulSet', sts, 'UPDATE', sts), OPTS);
    expect(response(u.body).patch).toBeUndefined();
    expect(u.outcome).toBe('allowed');
  });

  it('escapes annotation keys in the patch (shoal.dev/… → ~1)', () => {
    const withAnnotations = stsPod({ annotations: { other: 'x' } });
    const ops = JSON.parse(Buffer.from(response(handleReview('pods', review('Pod', withAnnotations), OPTS).body).patch!, 'base64').toString()) as { path: string }[];
    expect(ops.map((o) => o.path)).toContain('/metadata/annotations/shoal.dev~1injected');
  });

  it.each([
    ['an unlabelled pod', 'pods' as const, review('Pod', stsPod({ labels: {} }))],
    ['a pod UPDATE', 'pods' as const, review('Pod', stsPod(), 'UPDATE', stsPod())],
    ['a StatefulSet DELETE without object', 'statefulsets' as const, review('StatefulSet', undefined, 'DELETE')],
  ])('allows %s without a patch', (_n, endpoint, body) => {
    const r = handleReview(endpoint, body, OPTS);
    expect(response(r.body)).toEqual({ uid: expect.any(String), allowed: true });
  });

  it.each<[string, unknown, RegExp]>([
    ['a string', 'hello', /not a JSON object/],
    ['null', null, /not a JSON object/],
    ['an array', [1], /not a JSON object/],
    ['a wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, /expected "AdmissionReview"/],
    ['v1beta1', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }, /only admission.k8s.io\/v1/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /no "request"/],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' }, operation: 'CREATE' } }, /uid is missing/],
    ['no request.kind', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'CREATE' } }, /request.kind/],
    ['no operation', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { kind: 'Pod' } } }, /operation is missing/],
  ])('answers a body that is not an AdmissionReview (%s) with 400 and a JSON message', (_n, body, message) => {
    const r = handleReview('pods', body, OPTS);
    expect(r.status).toBe(400);
    expect(r.outcome).toBe('bad-request');
    expect((r.body as { message: string }).message).toMatch(message);
  });

  it.each<[string, 'pods' | 'statefulsets', Record<string, unknown>, RegExp]>([
    ['a StatefulSet sent to /mutate/pods', 'pods', review('StatefulSet', statefulSet()), /takes Pod objects, but got apps\/StatefulSet/],
    ['a pod sent to /mutate/statefulsets', 'statefulsets', review('Pod', stsPod()), /takes StatefulSet objects, but got core\/Pod/],
    ['a CREATE without object', 'pods', review('Pod', undefined), /request.object is missing/],
    ['an object that is a Deployment', 'pods', review('Pod', { ...stsPod(), kind: 'Deployment' }), /not a Pod/],
    ['a labelled pod with no containers', 'pods', review('Pod', { ...stsPod(), spec: { containers: [] } }), /no containers/],
    ['an invalid cluster name', 'pods', review('Pod', stsPod({ labels: { 'shoal.dev/cluster': 'bad.name' } })), /not a valid cluster name/],
    ['a user volume shoal-run', 'pods', review('Pod', { ...stsPod(), spec: { containers: [{ name: 't' }], volumes: [{ name: 'shoal-run' }] } }), /rename your volume "shoal-run"/],
  ])('refuses %s with allowed:false and a status message', (_n, endpoint, body, message) => {
    const r = handleReview(endpoint, body, OPTS);
    expect(r.status).toBe(200);
    expect(r.outcome).toBe('refused');
    const res = response(r.body);
    expect(res.allowed).toBe(false);
    expect(res.patch).toBeUndefined();
    expect(res.status!.message).toMatch(message);
    expect(r.log.message).toBe(res.status!.message);
  });

  it('parses a minimal valid review', () => {
    const p = parseAdmissionReview(review('Pod', stsPod()));
    expect(p.ok && p.request.kind).toEqual({ group: '', version: 'v1', kind: 'Pod' });
  });
});

describe('handleReview on random input (property)', () => {
  const endpoint = fc.constantFrom('pods' as const, 'statefulsets' as const);
  const check = (e: 'pods' | 'statefulsets', body: unknown) => {
    const r = handleReview(e, body, OPTS);
    expect([200, 400]).toContain(r.status);
    expect(r.outcome).not.toBe('error'); // a caught exception would still be a bug in the checks
    expect(() => JSON.stringify(r.body)).not.toThrow();
    if (r.status === 200) expect(typeof response(r.body).allowed).toBe('boolean');
  };

  it('answers any JSON value without throwing', () => {
    fc.assert(fc.property(endpoint, fc.jsonValue(), (e, body) => check(e, body)), { numRuns: 500 });
  });

  it('answers any AdmissionReview with a random object without throwing', () => {
    const anyObject = fc.oneof(
      fc.jsonValue(),
      // Random values planted into the fields Shoal reads, to reach deep into the checks.
      fc.record({
        metadata: fc.oneof(fc.jsonValue(), fc.record({ labels: fc.oneof(fc.jsonValue(), fc.constant({ 'shoal.dev/cluster': 'demo' })), annotations: fc.jsonValue(), name: fc.jsonValue() })),
        spec: fc.oneof(fc.jsonValue(), fc.record({ containers: fc.oneof(fc.jsonValue(), fc.array(fc.oneof(fc.jsonValue(), fc.record({ name: fc.string(), env: fc.jsonValue(), volumeMounts: fc.jsonValue(), lifecycle: fc.jsonValue(), ports: fc.jsonValue() })))), volumes: fc.jsonValue(), initContainers: fc.jsonValue(), template: fc.jsonValue(), updateStrategy: fc.jsonValue() })),
      }),
    );
    fc.assert(
      fc.property(endpoint, fc.constantFrom('Pod', 'StatefulSet') as fc.Arbitrary<'Pod' | 'StatefulSet'>, fc.constantFrom('CREATE', 'UPDATE', 'DELETE'), anyObject, anyObject, (e, kind, op, obj, old) => check(e, review(kind, obj, op, old))),
      { numRuns: 1000 },
    );
  });

  it('answers a valid labelled pod with random extra containers by a patch that applies', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { minLength: 1, maxLength: 4 }), fc.constantFrom('native' as const, 'container' as const), (names, mode) => {
        fc.pre(!names.includes('shoal-agent'));
        const pod = stsPod({ containers: names.map((name) => ({ name, image: 'x' })) });
        const r = handleReview('pods', review('Pod', pod), { ...OPTS, sidecarMode: mode });
        const res = response(r.body);
        expect(res.allowed).toBe(true);
        const after = applied(pod, res) as V1Pod;
        expect(response(handleReview('pods', review('Pod', after), OPTS).body).patch).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
