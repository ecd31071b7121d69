import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { judgePeer, renewalDelay, type PeerCheck } from '../../agent/mesh/identity.js';
import { meshIdentityFromSan, meshIdentityUri, parseMeshIdentityUri } from '../../common/mesh-identity.js';
import { MESH_CA_AUDIENCE } from '../../common/names.js';
import { identityOf, isRefusal, issueMeshCertificate, parsePublicKey, podFromReview, POD_NAME_EXTRA, POD_UID_EXTRA } from '../../webhook/mesh-ca.js';
import { generateBundle } from '../../webhook/tls.js';

const id = { namespace: 'default', cluster: 'demo', pod: 'storage-0' };

describe('mesh identity in a certificate', () => {
  it('round-trips the SPIFFE URI and reads it from a subjectAltName', () => {
    const uri = meshIdentityUri(id);
    expect(uri).toBe('spiffe://shoal.dev/ns/default/cluster/demo/pod/storage-0');
    expect(parseMeshIdentityUri(uri)).toEqual(id);
    expect(meshIdentityFromSan(`DNS:x, URI:${uri}`)).toEqual(id);
  });
  it.each([
    ['no SAN', undefined],
    ['DNS only', 'DNS:storage-0'],
    ['another trust domain', 'URI:spiffe://evil.dev/ns/default/cluster/demo/pod/storage-0'],
    ['two identities', `URI:${meshIdentityUri(id)}, URI:${meshIdentityUri({ ...id, pod: 'storage-1' })}`],
    ['an extra path segment', `URI:${meshIdentityUri(id)}/x`],
  ])('finds no identity in %s', (_n, san) => {
    expect(meshIdentityFromSan(san)).toBeNull();
  });
});

describe('judging a mesh peer', () => {
  const base: PeerCheck = { identity: id, namespace: 'default', cluster: 'demo', known: (p) => p === 'storage-0' };
  it.each<[string, Partial<PeerCheck>, string]>([
    ['a known pod claiming itself', { claimed: 'storage-0' }, 'ok'],
    ['a known pod claiming nothing', {}, 'ok'],
    ['the pod we dialled', { expected: 'storage-0' }, 'ok'],
    ['no identity', { identity: null }, 'no_identity'],
    ['another namespace', { namespace: 'prod' }, 'wrong_namespace'],
    ['another cluster', { cluster: 'other' }, 'wrong_cluster'],
    ['A claiming B', { claimed: 'storage-1' }, 'claim_mismatch'],
    ['A where we dialled B', { expected: 'storage-1' }, 'claim_mismatch'],
    ['a pod the watch does not list', { known: () => false }, 'unknown_pod'],
  ])('%s', (_n, over, want) => {
    const v = judgePeer({ ...base, ...over });
    expect(v.ok ? 'ok' : v.reason).toBe(want);
  });
});

describe('when to renew', () => {
  it.each([
    ['fresh: at half life', 0, 24, 0, 12],
    ['a third through', 0, 24, 8, 4],
    ['past half life: at once', 0, 24, 13, 0],
    ['expired: at once', 0, 24, 30, 0],
  ])('%s', (_n, from, to, now, wantHours) => {
    const h = 3600_000;
    expect(renewalDelay(from * h, to * h, now * h)).toBe(wantHours * h);
  });
});

describe('the mesh CA decisions', () => {
  const review = (over: Record<string, unknown> = {}) => ({
    authenticated: true,
    audiences: [MESH_CA_AUDIENCE],
    user: { username: 'system:serviceaccount:default:shoal-agent', extra: { [POD_NAME_EXTRA]: ['storage-0'], [POD_UID_EXTRA]: ['u-1'] } },
    ...over,
  });
  it('names the pod a bound token of the mesh-CA audience belongs to', () => {
    expect(podFromReview(review())).toEqual({ namespace: 'default', serviceAccount: 'shoal-agent', pod: 'storage-0', uid: 'u-1' });
  });
  it.each<[string, Record<string, unknown>, number]>([
    ['an invalid token', { authenticated: false }, 401],
    ['another audience', { audiences: ['https://kubernetes.default.svc'] }, 401],
    ['a user, not a ServiceAccount', { user: { username: 'alice', extra: {} } }, 403],
    ['a token bound to no pod (a Secret token)', { user: { username: 'system:serviceaccount:default:shoal-agent' } }, 403],
  ])('refuses %s', (_n, over, status) => {
    const r = podFromReview(review(over));
    expect(isRefusal(r) && r.status).toBe(status);
  });
  const caller = { namespace: 'default', serviceAccount: 'shoal-agent', pod: 'storage-0', uid: 'u-1' };
  const pod = (labels: Record<string, string>, uid = 'u-1') => ({ metadata: { name: 'storage-0', uid, labels } });
  it('gives the labelled pod its identity, and refuses a gone, replaced or unlabelled pod', () => {
    expect(identityOf(caller, pod({ 'shoal.dev/cluster': 'demo' }))).toEqual(id);
    for (const p of [null, pod({ 'shoal.dev/cluster': 'demo' }, 'u-2'), pod({})]) {
      const r = identityOf(caller, p);
      expect(isRefusal(r) && r.status).toBe(403);
    }
  });
  it('takes only an EC P-256 public key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(isRefusal(parsePublicKey({ publicKey: ec }))).toBe(false);
    for (const body of [{ publicKey: rsa }, { publicKey: 'junk' }, {}, null]) expect(isRefusal(parsePublicKey(body))).toBe(true);
  });
  it('issues a day-long certificate for that key, signed by the CA, naming exactly that pod', async () => {
    const b = await generateBundle(['localhost']);
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = new Date('2026-01-01T00:00:00Z');
    const cert = new X509Certificate(await issueMeshCertificate({ cert: b.caCert, key: b.caKey }, keys.publicKey, id, now));
    expect(cert.verify(new X509Certificate(b.caCert).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(keys.privateKey)).toBe(true);
    expect(meshIdentityFromSan(cert.subjectAltName)).toEqual(id);
    expect(Date.parse(cert.validTo) - now.getTime()).toBe(24 * 3600_000);
    expect(cert.ca).toBe(false);
  });
});
