import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { mutatePod, mutateStatefulSet, type Mutation } from '../../webhook/inject.js';
import { OPTS, statefulSet, stsPod, tarantoolContainer } from '../support/webhook-fixtures.js';

function ok<T>(m: Mutation): T {
  if (!m.allowed) throw new Error(`refused: ${m.message}`);
  return m.object as T;
}
const refused = (m: Mutation): string => (m.allowed ? 'ALLOWED' : m.message);
const find = (cs: V1Container[] | undefined, name: string) => (cs ?? []).find((c) => c.name === name);
const env = (c: V1Container | undefined, name: string) => (c?.env ?? []).find((e) => e.name === name);

describe('mutatePod', () => {
  it.each([
    { mode: 'native' as const, where: 'initContainers' as const },
    { mode: 'container' as const, where: 'containers' as const },
  ])('injects the agent as $where in $mode mode, with volume, env, probes, preStop and annotation', ({ mode, where }) => {
    const pod = ok<V1Pod>(mutatePod(stsPod(), { ...OPTS, sidecarMode: mode }));
    const spec = pod.spec!;
    const agent = find(spec[where], 'shoal-agent');
    expect(agent).toBeDefined();
    expect(agent!.image).toBe('shoal/agent:test');
    expect(agent!.restartPolicy).toBe(mode === 'native' ? 'Always' : undefined);
    expect(spec.containers[0]!.name).toBe('tarantool'); // the user's container stays first (kubectl's default)
    expect(spec.containers).toHaveLength(mode === 'native' ? 1 : 2);
    // shoal.lua is written by an init container before anything else starts, in both modes.
    const install = spec.initContainers![0]!;
    expect(install).toMatchObject({ name: 'shoal-install', image: 'shoal/agent:test', args: ['install-lua'] });
    expect(install.volumeMounts).toContainEqual({ name: 'shoal-run', mountPath: '/var/run/shoal' });
    expect(install.restartPolicy).toBeUndefined();
    expect(spec.volumes?.map((v) => v.name)).toEqual(['shoal-run', 'shoal-api-access']);
    // The ServiceAccount token: the agent's own projected one, no one else's (service-account-token tests).
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(agent!.volumeMounts).toContainEqual({ name: 'shoal-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
    expect(install.volumeMounts).toEqual([{ name: 'shoal-run', mountPath: '/var/run/shoal' }]);
    for (const c of [agent, spec.containers[0]]) {
      expect(c!.volumeMounts).toContainEqual({ name: 'shoal-run', mountPath: '/var/run/shoal' });
    }
    expect(env(agent, 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env(agent, 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(env(agent, 'POD_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    expect(env(agent, 'POD_UID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.uid');
    expect(env(agent, 'SHOAL_CLUSTER')?.value).toBe('demo');
    expect(env(agent, 'SHOAL_REPLICASET')?.value).toBe('storage');
    expect(agent!.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 8080 });
    expect(agent!.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 8080 });
    // Shoal's containers: non-root, read-only root, no capability; a memory request and limit, no CPU limit.
    for (const c of [agent!, install]) {
      expect(c.securityContext).toEqual({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
      expect(c.resources?.requests?.memory).toMatch(/Mi$/);
      expect(c.resources?.limits?.memory).toMatch(/Mi$/);
      expect(c.resources?.limits?.cpu).toBeUndefined();
    }
    const t = spec.containers[0]!;
    // The user's container is the user's: Shoal adds no security context or resources to it.
    expect(t.securityContext).toBeUndefined();
    expect(t.resources).toBeUndefined();
    expect(env(t, 'SHOAL_CONSOLE_SOCKET')?.value).toBe('/var/run/shoal/console.sock');
    expect(env(t, 'LUA_PATH')?.value).toBe('/var/run/shoal/?.lua;;');
    expect(t.lifecycle?.preStop?.httpGet).toMatchObject({ path: '/prestop', port: 8080 });
    expect(pod.metadata!.annotations!['shoal.dev/injected']).toBe('9.9.9');
  });

  it('injects into the container the annotation names, and only there, in a multi-container pod', () => {
    const proxy: V1Container = { name: 'proxy', image: 'envoy' };
    const input = stsPod({
      annotations: { 'shoal.dev/tarantool-container': 'db' },
      containers: [proxy, tarantoolContainer({ name: 'db' })],
    });
    const spec = ok<V1Pod>(mutatePod(input, OPTS)).spec!;
    expect(find(spec.containers, 'proxy')).toEqual(proxy);
    expect(env(find(spec.containers, 'db'), 'SHOAL_CONSOLE_SOCKET')).toBeDefined();
    expect(find(spec.containers, 'db')!.lifecycle?.preStop).toBeDefined();
  });

  it('uses the first container when the annotation is absent and leaves the others alone', () => {
    const sidecar: V1Container = { name: 'logs', image: 'fluent-bit' };
    const spec = ok<V1Pod>(mutatePod(stsPod({ containers: [tarantoolContainer(), sidecar] }), OPTS)).spec!;
    expect(find(spec.containers, 'logs')).toEqual(sidecar);
    expect(env(spec.containers[0], 'LUA_PATH')).toBeDefined();
  });

  it.each(['native', 'container'] as const)('is idempotent in %s mode: a second pass changes nothing', (mode) => {
    const once = ok<V1Pod>(mutatePod(stsPod(), { ...OPTS, sidecarMode: mode }));
    const twice = mutatePod(once, { ...OPTS, sidecarMode: mode });
    expect(refused(twice)).toBe('ALLOWED');
    expect(ok<V1Pod>(twice)).toEqual(once);
    // …even when the webhook runs in the other mode now, or the version changed.
    expect(ok<V1Pod>(mutatePod(once, { ...OPTS, sidecarMode: mode === 'native' ? 'container' : 'native', version: '10' }))).toEqual(once);
  });

  it('leaves an unlabelled pod untouched (the very same object)', () => {
    const pod = stsPod({ labels: { app: 'x' } });
    const m = mutatePod(pod, OPTS);
    expect(m.allowed && m.object).toBe(pod);
    expect(m.allowed && m.reason).toBe('unlabelled');
  });

  it.each([
    ['/app/?.lua;;', '/app/?.lua;/var/run/shoal/?.lua;;'],
    ['/app/?.lua', '/app/?.lua;/var/run/shoal/?.lua'],
    ['/app/?.lua;', '/app/?.lua;/var/run/shoal/?.lua'],
    ['', '/var/run/shoal/?.lua;;'],
    ['/var/run/shoal/?.lua;/x/?.lua', '/var/run/shoal/?.lua;/x/?.lua'],
  ])('appends to the user LUA_PATH %j → %j', (given, want) => {
    const pod = stsPod({ containers: [tarantoolContainer({ env: [{ name: 'LUA_PATH', value: given }] })] });
    const t = ok<V1Pod>(mutatePod(pod, OPTS)).spec!.containers[0];
    expect(t!.env!.filter((e) => e.name === 'LUA_PATH')).toEqual([{ name: 'LUA_PATH', value: want }]);
  });

  it('derives the replica set from the name when the pod has no StatefulSet owner', () => {
    const spec = ok<V1Pod>(mutatePod(stsPod({ name: 'router-12', owner: null }), OPTS)).spec!;
    expect(env(find(spec.initContainers, 'shoal-agent'), 'SHOAL_REPLICASET')?.value).toBe('router');
  });

  it('refuses a user preStop on the Tarantool container rather than clobber it', () => {
    const own = stsPod({ containers: [tarantoolContainer({ lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } } })] });
    expect(refused(mutatePod(own, OPTS))).toMatch(/own lifecycle.preStop.*remove yours/);
  });

  it.each<[string, () => unknown, RegExp]>([
    ['no containers', () => ({ ...stsPod(), spec: { containers: [] } }), /no containers: add your Tarantool container/],
    ['containers missing', () => ({ ...stsPod(), spec: {} }), /spec.containers is missing/],
    ['containers not a list', () => ({ ...stsPod(), spec: { containers: 'x' } }), /spec.containers must be a list/],
    ['a container without a name', () => ({ ...stsPod(), spec: { containers: [{ image: 'x' }] } }), /containers\[0\] must be an object with a non-empty "name"/],
    ['no spec', () => ({ ...stsPod(), spec: undefined }), /spec is missing/],
    ['upper-case cluster', () => stsPod({ labels: { 'shoal.dev/cluster': 'Demo' } }), /not a valid cluster name.*DNS-1123/],
    ['empty cluster', () => stsPod({ labels: { 'shoal.dev/cluster': '' } }), /not a valid cluster name \(it is empty\)/],
    ['too long cluster', () => stsPod({ labels: { 'shoal.dev/cluster': 'a'.repeat(64) } }), /64 characters long/],
    ['a user volume named shoal-run', () => ({ ...stsPod(), spec: { containers: [tarantoolContainer()], volumes: [{ name: 'shoal-run', emptyDir: {} }] } }), /rename your volume "shoal-run"/],
    ['a user volume named shoal-api-access', () => ({ ...stsPod(), spec: { containers: [tarantoolContainer()], volumes: [{ name: 'shoal-api-access', emptyDir: {} }] } }), /rename your volume "shoal-api-access"/],
    ['a user container named shoal-agent', () => stsPod({ containers: [tarantoolContainer(), { name: 'shoal-agent', image: 'x' }] }), /rename your container "shoal-agent"/],
    ['a user init container named shoal-install', () => ({ ...stsPod(), spec: { ...stsPod().spec!, initContainers: [{ name: 'shoal-install', image: 'x' }] } }), /rename your container "shoal-install"/],
    ['an annotation naming a missing container', () => stsPod({ annotations: { 'shoal.dev/tarantool-container': 'db' } }), /names no container of the pod \(it has: tarantool\)/],
    ['the agent port taken', () => stsPod({ containers: [tarantoolContainer({ ports: [{ containerPort: 8080 }] })] }), /uses port 8080/],
    ['LUA_PATH from a ConfigMap', () => stsPod({ containers: [tarantoolContainer({ env: [{ name: 'LUA_PATH', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } }] })] }), /LUA_PATH from valueFrom/],
    ['a mount at /var/run/shoal', () => stsPod({ containers: [tarantoolContainer({ volumeMounts: [{ name: 'x', mountPath: '/var/run/shoal/' }] })] }), /mounts something at \/var\/run\/shoal/],
    ['no owner and no ordinal', () => stsPod({ name: 'standalone', owner: null }), /no StatefulSet owner.*through a StatefulSet/],
    ['labels that are not strings', () => ({ ...stsPod(), metadata: { name: 'p-0', labels: { 'shoal.dev/cluster': 5 } } }), /labels must map strings to strings/],
    ['a Deployment', () => ({ ...stsPod(), kind: 'Deployment' }), /is a Deployment, not a Pod/],
    ['not an object', () => 'pod', /not a JSON object/],
  ])('refuses %s with a message saying what to fix', (_name, make, message) => {
    const m = mutatePod(make(), OPTS);
    expect(refused(m)).toMatch(message);
  });
});

describe('mutateStatefulSet', () => {
  it('copies the cluster label, sets OnDelete and keeps the original strategy in an annotation', () => {
    const sts = ok<V1StatefulSet>(mutateStatefulSet(statefulSet(), OPTS));
    expect(sts.spec!.template.metadata!.labels).toEqual({ app: 'storage', 'shoal.dev/cluster': 'demo' });
    expect(sts.spec!.updateStrategy).toEqual({ type: 'OnDelete' });
    expect(JSON.parse(sts.metadata!.annotations!['shoal.dev/update-strategy']!)).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
    // Nothing else: the template's spec stays as the user wrote it.
    expect(sts.spec!.template.spec).toEqual(statefulSet().spec!.template.spec);
  });

  it('records Kubernetes’ default when no strategy is given', () => {
    const sts = ok<V1StatefulSet>(mutateStatefulSet(statefulSet({ strategy: null }), OPTS));
    expect(sts.metadata!.annotations!['shoal.dev/update-strategy']).toBe('{"type":"RollingUpdate"}');
  });

  it('is idempotent on UPDATE and never overwrites the original with its own OnDelete', () => {
    const created = ok<V1StatefulSet>(mutateStatefulSet(statefulSet(), OPTS));
    const again = ok<V1StatefulSet>(mutateStatefulSet(created, OPTS, created));
    expect(again).toEqual(created);
    // An update that dropped the annotation (kubectl replace) gets it back from the stored object.
    const replaced = structuredClone(created);
    delete replaced.metadata!.annotations;
    expect(ok<V1StatefulSet>(mutateStatefulSet(replaced, OPTS, created)).metadata!.annotations).toEqual(created.metadata!.annotations);
  });

  it('records a new strategy the user sets on UPDATE', () => {
    const created = ok<V1StatefulSet>(mutateStatefulSet(statefulSet(), OPTS));
    const edited = structuredClone(created);
    edited.spec!.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 2 } };
    const sts = ok<V1StatefulSet>(mutateStatefulSet(edited, OPTS, created));
    expect(sts.metadata!.annotations!['shoal.dev/update-strategy']).toBe('{"type":"RollingUpdate","rollingUpdate":{"partition":2}}');
    expect(sts.spec!.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('leaves an unlabelled StatefulSet and one being deleted untouched', () => {
    const plain = statefulSet({ labels: { app: 'x' } });
    expect(mutateStatefulSet(plain, OPTS)).toMatchObject({ allowed: true, object: plain, reason: 'unlabelled' });
    const dying = statefulSet();
    dying.metadata!.deletionTimestamp = new Date(0);
    expect(mutateStatefulSet(dying, OPTS)).toMatchObject({ allowed: true, object: dying });
  });

  it('accepts the tarantool-container annotation when the template carries it too', () => {
    const sts = statefulSet({ annotations: { 'shoal.dev/tarantool-container': 'db' } });
    sts.spec!.template.metadata!.annotations = { 'shoal.dev/tarantool-container': 'db' };
    sts.spec!.template.spec!.containers = [{ name: 'proxy', image: 'p' }, tarantoolContainer({ name: 'db' })];
    expect(refused(mutateStatefulSet(sts, OPTS))).toBe('ALLOWED');
  });

  it.each<[string, (s: V1StatefulSet) => void, RegExp]>([
    ['an invalid cluster name', (s) => (s.metadata!.labels!['shoal.dev/cluster'] = 'my_cluster'), /not a valid cluster name/],
    ['a conflicting template label', (s) => (s.spec!.template.metadata!.labels!['shoal.dev/cluster'] = 'other'), /make them equal/],
    ['a template without containers', (s) => (s.spec!.template.spec!.containers = []), /no containers/],
    ['a template volume shoal-run', (s) => (s.spec!.template.spec!.volumes = [{ name: 'shoal-run', emptyDir: {} }]), /rename your volume "shoal-run"/],
    ['a volumeClaimTemplate shoal-run', (s) => (s.spec!.volumeClaimTemplates = [{ metadata: { name: 'shoal-run' } }]), /rename your volumeClaimTemplate "shoal-run"/],
    ['the annotation on the StatefulSet only', (s) => {
      s.metadata!.annotations = { 'shoal.dev/tarantool-container': 'db' };
      s.spec!.template.spec!.containers = [{ name: 'proxy', image: 'p' }, tarantoolContainer({ name: 'db' })];
    }, /set the same annotation in the template/],
    ['a user preStop in the template', (s) => (s.spec!.template.spec!.containers[0]!.lifecycle = { preStop: { exec: { command: ['x'] } } }), /preStop/],
  ])('refuses %s at apply time', (_name, edit, message) => {
    const sts = statefulSet();
    edit(sts);
    expect(refused(mutateStatefulSet(sts, OPTS))).toMatch(message);
  });

  it('lets an UPDATE through unchanged (with a warning) when the problem predates it', () => {
    const legacy = statefulSet();
    legacy.spec!.template.spec!.volumes = [{ name: 'shoal-run', emptyDir: {} }];
    const scaled = structuredClone(legacy);
    scaled.spec!.replicas = 5;
    const m = mutateStatefulSet(scaled, OPTS, legacy);
    expect(m).toMatchObject({ allowed: true, object: scaled });
    expect(m.allowed && m.warnings[0]).toMatch(/rename your volume/);
    // …but a template change must fix it.
    scaled.spec!.template.spec!.containers[0]!.image = 'tarantool/tarantool:3';
    expect(refused(mutateStatefulSet(scaled, OPTS, legacy))).toMatch(/rename your volume/);
  });
});

describe('mesh CA settings', () => {
  const meshCa = { url: 'https://shoal-webhook.shoal-system.svc:443', caCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' };
  it('give the agent alone the mesh-CA token, the CA and the webhook address', () => {
    const pod = ok<V1Pod>(mutatePod(stsPod(), { ...OPTS, sidecarMode: 'container', meshCa }));
    const spec = pod.spec!;
    const agent = find(spec.containers, 'shoal-agent');
    const tarantool = find(spec.containers, 'tarantool');
    expect(spec.volumes!.find((v) => v.name === 'shoal-mesh-ca')?.projected?.sources).toEqual([
      { serviceAccountToken: { audience: 'shoal.dev/mesh-ca', expirationSeconds: 3607, path: 'token' } },
    ]);
    expect(agent!.volumeMounts).toContainEqual({ name: 'shoal-mesh-ca', mountPath: '/var/run/secrets/shoal.dev/mesh-ca', readOnly: true });
    expect(env(agent, 'SHOAL_MESH_CA_URL')?.value).toBe(meshCa.url);
    expect(env(agent, 'SHOAL_MESH_CA_CERT')?.value).toBe(meshCa.caCert);
    expect(env(agent, 'SHOAL_MESH_PORT')?.value).toBe('8081');
    expect(agent!.ports).toContainEqual({ name: 'shoal-mesh', containerPort: 8081, protocol: 'TCP' });
    expect((tarantool!.volumeMounts ?? []).some((m) => m.name === 'shoal-mesh-ca')).toBe(false);
    expect((tarantool!.env ?? []).some((e) => e.name.startsWith('SHOAL_MESH'))).toBe(false);
    // A second pass changes nothing.
    expect(ok<V1Pod>(mutatePod(pod, { ...OPTS, sidecarMode: 'container', meshCa }))).toEqual(pod);
  });
  it('refuses a user volume named shoal-mesh-ca', () => {
    const pod = stsPod();
    pod.spec!.volumes = [{ name: 'shoal-mesh-ca', emptyDir: {} }];
    expect(refused(mutatePod(pod, { ...OPTS, meshCa }))).toContain('shoal-mesh-ca');
  });
});
