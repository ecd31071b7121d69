// The webhook's half of the 3.x native style: a Tarantool container that names a config file gets
// Shoal's config in its place, the user's kept as SHOAL_USER_CONFIG, the pod's name as the
// instance name and the preload that waits for the agent; re-injecting changes nothing.
import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { mutatePod, type Mutation } from '../../webhook/inject.js';
import { NATIVE_CONFIG, NATIVE_PRELOAD, nativeStyleOf } from '../../webhook/native-style.js';
import { OPTS, stsPod, tarantoolContainer } from '../support/webhook-fixtures.js';

const ok = (m: Mutation): V1Pod => {
  if (!m.allowed) throw new Error(`refused: ${m.message}`);
  return m.object as V1Pod;
};
const env = (c: V1Container | undefined, name: string) => (c?.env ?? []).find((e) => e.name === name);
const inject = (c: V1Container) => mutatePod(stsPod({ containers: [c] }), OPTS);

describe('the 3.x native style in the webhook', () => {
  it.each([
    { how: 'env TT_CONFIG', c: tarantoolContainer({ image: 'tarantool/tarantool:3.8', env: [{ name: 'TT_CONFIG', value: '/etc/app/config.yaml' }] }) },
    { how: '--config FILE', c: tarantoolContainer({ image: 'tarantool/tarantool:3.8', command: ['tarantool', '--config', '/etc/app/config.yaml'] }) },
    { how: '--config=FILE', c: tarantoolContainer({ image: 'tarantool/tarantool:3.8', args: ['--config=/etc/app/config.yaml'] }) },
    { how: '-c FILE', c: tarantoolContainer({ image: 'tarantool/tarantool:3.8', command: ['tarantool'], args: ['-c', '/etc/app/config.yaml'] }) },
  ])('points a container that names its config with $how at Shoal\'s config', ({ c }) => {
    const pod = ok(inject(c));
    const t = pod.spec!.containers[0]!;
    expect(env(t, 'SHOAL_USER_CONFIG')?.value).toBe('/etc/app/config.yaml');
    expect(env(t, 'TT_INSTANCE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env(t, 'TT_PRELOAD')?.value).toBe(NATIVE_PRELOAD);
    expect(env(t, 'SHOAL_REPLICASET')?.value).toBe('storage');
    expect(env(t, 'SHOAL_CLUSTER')?.value).toBe('demo');
    const line = [...(t.command ?? []), ...(t.args ?? [])].join(' ');
    expect(line).not.toContain('/etc/app/config.yaml');
    if (env(t, 'TT_CONFIG')) expect(env(t, 'TT_CONFIG')?.value).toBe(NATIVE_CONFIG);
    else expect(line).toContain(NATIVE_CONFIG);
    // Idempotent: the injected pod, injected again, is the same object.
    const again = ok(mutatePod(pod, OPTS));
    expect(again).toEqual(pod);
  });

  it('keeps the user\'s own preloads, after Shoal\'s', () => {
    const c = tarantoolContainer({ env: [{ name: 'TT_CONFIG', value: '/etc/c.yaml' }, { name: 'TT_PRELOAD', value: 'mymod;/opt/x.lua' }] });
    const t = ok(inject(c)).spec!.containers[0]!;
    expect(env(t, 'TT_PRELOAD')?.value).toBe(`${NATIVE_PRELOAD};mymod;/opt/x.lua`);
  });

  it('leaves a Lua-style container (init.lua) without any of it', () => {
    const t = ok(inject(tarantoolContainer({ command: ['tarantool', '/opt/app/init.lua'] }))).spec!.containers[0]!;
    expect(nativeStyleOf(t).userConfig).toBeNull();
    for (const name of ['TT_CONFIG', 'TT_PRELOAD', 'TT_INSTANCE_NAME', 'SHOAL_USER_CONFIG']) expect(env(t, name)).toBeUndefined();
  });

  it.each([
    { c: tarantoolContainer({ command: ['tarantool', '--config', '/etc/c.yaml', '--name', 'x'] }), says: /remove --name/ },
    { c: tarantoolContainer({ env: [{ name: 'TT_CONFIG', value: '/etc/c.yaml' }, { name: 'TT_INSTANCE_NAME', value: 'x' }] }), says: /TT_INSTANCE_NAME/ },
    { c: tarantoolContainer({ env: [{ name: 'TT_CONFIG', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }] }), says: /plain value/ },
    { c: tarantoolContainer({ command: ['tarantool', '--config'] }), says: /no file after it/ },
    { c: tarantoolContainer({ env: [{ name: 'TT_CONFIG', value: NATIVE_CONFIG }] }), says: /Shoal writes that one/ },
  ])('refuses, saying what to change: $says', ({ c, says }) => {
    const m = inject(c);
    expect(m.allowed).toBe(false);
    if (!m.allowed) expect(m.message).toMatch(says);
  });
});
