// Issue 14, least privilege: in a Shoal pod only the agent holds the ServiceAccount token. The
// decision (pure, with its reason), what the injection makes of the pods the API server really sends
// (the ServiceAccount admission plugin has mounted the token everywhere by then), and the patch.
import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod, V1PodSpec, V1StatefulSet } from '@kubernetes/client-node';
import { decideServiceAccountToken, type TokenDecision } from '../../webhook/service-account-token.js';
import { mutatePod, mutateStatefulSet, type Mutation } from '../../webhook/inject.js';
import { handleReview } from '../../webhook/review.js';
import { applied, OPTS, review, SA_DIR, statefulSet, stsPod, tarantoolContainer, withAutomountedToken, type ReviewResponse } from '../support/webhook-fixtures.js';

function ok<T>(m: Mutation): T {
  if (!m.allowed) throw new Error(`refused: ${m.message}`);
  return m.object as T;
}
const specOf = (pod: V1Pod): V1PodSpec => pod.spec!;
const tokenMountsOf = (c: V1Container | undefined) => (c?.volumeMounts ?? []).filter((m) => m.mountPath === SA_DIR);
const all = (spec: V1PodSpec) => [...(spec.initContainers ?? []), ...spec.containers];
const legacyVolume = 'default-token-wz82w';

describe('decideServiceAccountToken', () => {
  const logs: V1Container = { name: 'logs', image: 'fluent-bit' };
  const ownToken = { name: 'app-token', projected: { sources: [{ serviceAccountToken: { audience: 'vault', path: 'token' } }] } };
  it.each<[string, () => V1PodSpec, Partial<Extract<TokenDecision, { kind: 'agent-only' }>>]>([
    ['a pod without any token (nothing automounted)', () => specOf(stsPod()), { disableAutomount: true, unmount: [], dropVolumes: [], reason: 'ServiceAccount token: agent only' }],
    [
      'the 1.20 plugin’s Secret volume in the Tarantool container',
      () => specOf(withAutomountedToken(stsPod(), 'legacy')),
      { disableAutomount: true, unmount: [{ container: 'tarantool', volume: legacyVolume }], dropVolumes: [legacyVolume], reason: 'ServiceAccount token: agent only; unmounted from tarantool' },
    ],
    [
      'the 1.21+ plugin’s kube-api-access volume in every container, init containers too',
      () => {
        const pod = stsPod({ containers: [tarantoolContainer(), logs] });
        pod.spec!.initContainers = [{ name: 'migrate', image: 'm' }];
        return specOf(withAutomountedToken(pod, 'bound'));
      },
      {
        unmount: ['migrate', 'tarantool', 'logs'].map((container) => ({ container, volume: 'kube-api-access-x7k2q' })),
        dropVolumes: ['kube-api-access-x7k2q'],
        reason: 'ServiceAccount token: agent only; unmounted from migrate, tarantool, logs',
      },
    ],
    [
      'the token of the pod’s own ServiceAccount (shoal-agent-token-…)',
      () => specOf(withAutomountedToken(stsPod(), 'legacy', 'shoal-agent')),
      { unmount: [{ container: 'tarantool', volume: 'shoal-agent-token-wz82w' }], dropVolumes: ['shoal-agent-token-wz82w'] },
    ],
    [
      'automountServiceAccountToken already false (the user’s, or a second pass)',
      () => ({ ...specOf(stsPod()), automountServiceAccountToken: false }),
      { disableAutomount: false, unmount: [], dropVolumes: [] },
    ],
    [
      'a volume of the pod’s own mounted at the path: left as written',
      () => {
        const spec = specOf(stsPod({ containers: [tarantoolContainer({ volumeMounts: [{ name: 'app-token', mountPath: `${SA_DIR}/` }] })] }));
        return { ...spec, volumes: [ownToken] };
      },
      { unmount: [], dropVolumes: [], reason: `ServiceAccount token: agent only; left the pod's own mounts at ${SA_DIR} in tarantool (volume app-token)` },
    ],
    [
      'the plugin’s volume also mounted elsewhere by the user: unmounted at the path, the volume stays',
      () => {
        const spec = specOf(withAutomountedToken(stsPod(), 'legacy'));
        spec.containers[0]!.volumeMounts!.push({ name: legacyVolume, mountPath: '/etc/token' });
        return spec;
      },
      { unmount: [{ container: 'tarantool', volume: legacyVolume }], dropVolumes: [] },
    ],
    [
      'an agent already there keeps what it mounts',
      () => specOf(withAutomountedToken(stsPod({ containers: [tarantoolContainer(), { name: 'shoal-agent', image: 'a' }] }), 'legacy')),
      { unmount: [{ container: 'tarantool', volume: legacyVolume }], dropVolumes: [] },
    ],
    [
      'another account’s token Secret is not the plugin’s',
      () => {
        const spec = specOf(stsPod({ containers: [tarantoolContainer({ volumeMounts: [{ name: 'other', mountPath: SA_DIR }] })] }));
        return { ...spec, serviceAccountName: 'shoal-agent', volumes: [{ name: 'other', secret: { secretName: 'default-token-abcde' } }] };
      },
      { unmount: [], dropVolumes: [] },
    ],
  ])('%s → agent only', (_name, spec, want) => {
    const d = decideServiceAccountToken(spec());
    expect(d.kind).toBe('agent-only');
    expect(d).toMatchObject(want);
  });

  it('respects a pod that sets automountServiceAccountToken: true, and says so', () => {
    const d = decideServiceAccountToken({ ...specOf(withAutomountedToken(stsPod())), automountServiceAccountToken: true });
    expect(d).toMatchObject({ kind: 'every-container', reason: expect.stringMatching(/every container.*automountServiceAccountToken: true/) });
    expect(d.kind === 'every-container' && d.warning).toMatch(/Tarantool included.*remove the field/);
  });
});

describe('the injected pod holds one token, in the agent', () => {
  it.each([
    ['legacy', 'native'],
    ['legacy', 'container'],
    ['bound', 'native'],
    ['bound', 'container'],
  ] as const)('%s plugin volume, %s sidecar: the agent mounts the projected token read-only, nobody else mounts one', (style, mode) => {
    const m = mutatePod(withAutomountedToken(stsPod({ containers: [tarantoolContainer(), { name: 'logs', image: 'l' }] }), style), { ...OPTS, sidecarMode: mode });
    const spec = specOf(ok<V1Pod>(m));
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.volumes?.map((v) => v.name)).toEqual(['shoal-run', 'shoal-api-access']);
    expect(spec.volumes?.[1]).toEqual({
      name: 'shoal-api-access',
      projected: {
        defaultMode: 0o644,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    });
    const holders = all(spec).filter((c) => tokenMountsOf(c).length > 0);
    expect(holders.map((c) => c.name)).toEqual(['shoal-agent']);
    expect(tokenMountsOf(holders[0])).toEqual([{ name: 'shoal-api-access', mountPath: SA_DIR, readOnly: true }]);
    expect(m.allowed && m.reason).toBe('injected; ServiceAccount token: agent only; unmounted from tarantool, logs');
    expect(m.allowed && m.warnings).toEqual([]);
  });

  it('stays so when the plugin runs again (admission reinvocation) and the webhook after it', () => {
    const once = ok<V1Pod>(mutatePod(withAutomountedToken(stsPod()), OPTS));
    const replugged = withAutomountedToken(once); // automountServiceAccountToken: false → the plugin adds nothing
    expect(replugged).toEqual(once);
    expect(ok<V1Pod>(mutatePod(replugged, OPTS))).toEqual(once);
  });

  it('leaves the token everywhere when the pod asks for it, gives the agent its own, and warns', () => {
    const input = withAutomountedToken({ ...stsPod(), spec: { ...stsPod().spec!, automountServiceAccountToken: true } });
    const m = mutatePod(input, { ...OPTS, sidecarMode: 'container' });
    const spec = specOf(ok<V1Pod>(m));
    expect(spec.automountServiceAccountToken).toBe(true);
    expect(tokenMountsOf(spec.containers[0])).toEqual([{ name: legacyVolume, readOnly: true, mountPath: SA_DIR }]);
    expect(tokenMountsOf(spec.containers.find((c) => c.name === 'shoal-agent'))[0]?.name).toBe('shoal-api-access');
    expect(spec.volumes?.map((v) => v.name)).toEqual([legacyVolume, 'shoal-run', 'shoal-api-access']);
    expect(m.allowed && m.reason).toMatch(/every container \(the pod sets automountServiceAccountToken: true\)/);
    expect(m.allowed && m.warnings[0]).toMatch(/Tarantool included/);
  });

  it('a StatefulSet whose template asks for the token everywhere is warned at apply time, and mutated as before', () => {
    const sts = statefulSet();
    sts.spec!.template.spec!.automountServiceAccountToken = true;
    const m = mutateStatefulSet(sts, OPTS);
    expect(m.allowed && m.warnings[0]).toMatch(/automountServiceAccountToken is true/);
    expect(ok<V1StatefulSet>(m).spec!.template.spec).toEqual(sts.spec!.template.spec);
    const plain = mutateStatefulSet(statefulSet(), OPTS);
    expect(plain.allowed && plain.warnings).toEqual([]);
  });

  it('refuses a volumeClaimTemplate named shoal-api-access', () => {
    const sts = statefulSet();
    sts.spec!.volumeClaimTemplates = [{ metadata: { name: 'shoal-api-access' } }];
    const m = mutateStatefulSet(sts, OPTS);
    expect(m.allowed ? 'ALLOWED' : m.message).toMatch(/rename your volumeClaimTemplate "shoal-api-access"/);
  });
});

describe('the patch', () => {
  it('takes the token out with one operation per place it was, keeps the user’s container in place, and a re-review is a no-op', () => {
    const pod = withAutomountedToken(stsPod());
    const r = handleReview('pods', review('Pod', pod), { ...OPTS, sidecarMode: 'container' });
    const response = r.body.response as ReviewResponse;
    const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString()) as Array<{ op: string; path: string }>;
    expect(ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /metadata/annotations',
      'add /spec/automountServiceAccountToken',
      'add /spec/initContainers',
      'add /spec/containers/0/env',
      'add /spec/containers/0/lifecycle',
      'replace /spec/containers/0/volumeMounts/0', // the token's mount → Shoal's run directory
      'add /spec/containers/1',
      'remove /spec/volumes/0',
      'add /spec/volumes/0',
      'add /spec/volumes/1',
    ]);
    const out = applied(pod, response);
    expect(tokenMountsOf(out.spec!.containers[0])).toEqual([]);
    expect(out.spec!.containers[0]!.ports).toEqual(pod.spec!.containers[0]!.ports);
    const again = handleReview('pods', review('Pod', out), { ...OPTS, sidecarMode: 'container' });
    expect((again.body.response as ReviewResponse).patch).toBeUndefined();
    expect(again.log.reason).toBe('already injected; ServiceAccount token: agent only');
  });
});
