import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { containerArgv, imageRepository, imageTag, lookupImage } from '../../localcluster/kubelet/image.js';
import { IpAllocator, parseIpBase, unixUidForIp, unixUidRange } from '../../localcluster/kubelet/ipam.js';
import { planLaunch } from '../../localcluster/kubelet/launch.js';
import { orderMounts, exitCodeOf } from '../../localcluster/kubelet/process.js';
import type { ImageTable } from '../../localcluster/kubelet/types.js';

const table: ImageTable = {
  'tarantool/tarantool': { entrypoint: ['tarantool'] },
  'shoal/agent': { entrypoint: ['/usr/bin/node', '/repo/dist/agent/main.js'], cmd: ['--default'] },
  'shoal/agent-debug': { entrypoint: ['debug'] },
  node: { entrypoint: ['/usr/bin/node'] },
};

describe('image table lookup', () => {
  it.each([
    ['tarantool/tarantool:2.11', 'tarantool/tarantool'],
    ['docker.io/tarantool/tarantool:2.11', 'tarantool/tarantool'],
    ['docker.io/library/node:20', 'node'],
    ['node', 'node'],
    ['registry:5000/shoal/agent@sha256:abc', 'registry:5000/shoal/agent'],
  ])('repository of %s is %s', (image, repo) => expect(imageRepository(image)).toBe(repo));

  it('takes the longest matching prefix', () => {
    expect(lookupImage(table, 'shoal/agent-debug:1')?.entrypoint).toEqual(['debug']);
    expect(lookupImage(table, 'shoal/agent:0.1.0')?.entrypoint[1]).toBe('/repo/dist/agent/main.js');
    expect(lookupImage(table, 'tarantool/tarantool:2.6')?.entrypoint).toEqual(['tarantool']);
  });

  it('does not match a mere string prefix of a name', () => {
    expect(lookupImage(table, 'nodejs:1')).toBeUndefined();
    expect(lookupImage(table, 'redis:7')).toBeUndefined();
  });
});

describe('containerArgv (Docker semantics)', () => {
  const image = { entrypoint: ['ep'], cmd: ['default-arg'] };
  it.each<[Pick<V1Container, 'command' | 'args'>, string[]]>([
    [{}, ['ep', 'default-arg']],
    [{ args: ['a1'] }, ['ep', 'a1']],
    [{ command: ['cmd'] }, ['cmd']],
    [{ command: ['cmd'], args: ['a1'] }, ['cmd', 'a1']],
    [{ command: [], args: [] }, ['ep', 'default-arg']],
  ])('%j → %j', (c, argv) => expect(containerArgv(image, c, {})).toEqual(argv));

  it('expands $(VAR) in command and args but not in the image entrypoint', () => {
    expect(containerArgv({ entrypoint: ['$(X)'] }, { args: ['--listen=$(IP):3301', '$$(IP)'] }, { IP: '127.0.1.2', X: 'no' })).toEqual([
      '$(X)',
      '--listen=127.0.1.2:3301',
      '$(IP)',
    ]);
  });
});

describe('planLaunch', () => {
  const pod: V1Pod = { metadata: { name: 'p', namespace: 'n', uid: 'u' }, spec: { containers: [] } };
  const input = (container: V1Container) => ({
    container,
    facts: { pod, podIP: '127.0.1.2', hostIP: '127.0.0.1' },
    objects: { secrets: new Map(), configMaps: new Map() },
    volumes: { data: '/run/vol/data', token: '/run/pod/token' },
    images: table,
    baseEnv: { SHOAL_BIND_HOST: '127.0.1.2' },
    hostname: 'p',
  });

  it('builds argv, env, working dir and bind mounts (subPath, subPathExpr, readOnly)', () => {
    const r = planLaunch(
      input({
        name: 'c',
        image: 'tarantool/tarantool:2.6',
        args: ['/opt/init.lua'],
        workingDir: '/var/lib/tarantool',
        env: [{ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        volumeMounts: [
          { name: 'data', mountPath: '/var/lib/tarantool' },
          { name: 'data', mountPath: '/logs', subPathExpr: 'logs/$(POD)' },
          { name: 'token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
        ],
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.launch.argv).toEqual(['tarantool', '/opt/init.lua']);
    expect(r.launch.workingDir).toBe('/var/lib/tarantool');
    expect(r.launch.env).toMatchObject({ POD: 'p', SHOAL_BIND_HOST: '127.0.1.2', HOSTNAME: 'p', HOME: '/' });
    expect(r.launch.mounts).toEqual([
      { source: '/run/vol/data', target: '/var/lib/tarantool', readOnly: false },
      { source: '/run/vol/data/logs/p', target: '/logs', readOnly: false },
      { source: '/run/pod/token', target: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ]);
    expect(r.launch.subPathDirs).toEqual(['/run/vol/data/logs/p']);
  });

  it('defaults the working directory to /', () => {
    const r = planLaunch(input({ name: 'c', image: 'node:20', command: ['node'] }));
    expect(r.ok && r.launch.workingDir).toBe('/');
  });

  it.each<[V1Container, string]>([
    [{ name: 'c', image: 'redis:7' }, 'ErrImagePull'],
    [{ name: 'c', image: 'node', volumeMounts: [{ name: 'nope', mountPath: '/x' }] }, 'CreateContainerConfigError'],
    [{ name: 'c', image: 'node', volumeMounts: [{ name: 'data', mountPath: '/x', subPath: '../escape' }] }, 'CreateContainerConfigError'],
    [{ name: 'c', image: 'node', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 'missing', key: 'k' } } }] }, 'CreateContainerConfigError'],
  ])('refuses %j with %s', (c, reason) => {
    const r = planLaunch(input(c));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(reason);
  });
});

describe('mount order and exit codes', () => {
  it('mounts parents before the volumes inside them', () => {
    const m = (target: string) => ({ source: '/s', target, readOnly: false });
    expect(orderMounts([m('/a/b/c'), m('/a'), m('/x/y'), m('/a/b')]).map((x) => x.target)).toEqual(['/a', '/x/y', '/a/b', '/a/b/c']);
  });

  it('reports signals as 128 + signal number', () => {
    expect(exitCodeOf(0, null)).toBe(0);
    expect(exitCodeOf(3, null)).toBe(3);
    expect(exitCodeOf(null, 'SIGKILL')).toBe(137);
    expect(exitCodeOf(null, 'SIGTERM')).toBe(143);
  });
});

describe('pod IPs and uids', () => {
  it('validates the base', () => {
    expect(parseIpBase('127.0.1')).toEqual([127, 0, 1]);
    for (const bad of ['10.0.1', '127.0', '127.0.1.2', '127.0.256', '127.a.1']) expect(() => parseIpBase(bad)).toThrow();
  });

  it('hands out .2 … .254 round-robin, never an IP in use, and returns the same IP to the same owner', () => {
    const ipam = new IpAllocator('127.0.3');
    expect(ipam.allocate('a')).toBe('127.0.3.2');
    expect(ipam.allocate('b')).toBe('127.0.3.3');
    expect(ipam.allocate('a')).toBe('127.0.3.2');
    ipam.release('a');
    expect(ipam.allocate('c')).toBe('127.0.3.4'); // a's IP is not reused at once
    const many = Array.from({ length: 251 }, (_, i) => ipam.allocate(`x${i}`));
    expect(new Set([...many, '127.0.3.3', '127.0.3.4']).size).toBe(253);
    expect(many).toContain('127.0.3.2'); // wrapped around to the freed one
    expect(() => ipam.allocate('one-too-many')).toThrow(/no free pod IP/);
  });

  it('honours a preferred IP when it is free and on its base', () => {
    const ipam = new IpAllocator('127.0.1');
    expect(ipam.allocate('a', '127.0.1.40')).toBe('127.0.1.40');
    expect(ipam.allocate('b', '127.0.1.40')).toBe('127.0.1.2');
    expect(ipam.allocate('c', '127.0.2.9')).toBe('127.0.1.3');
  });

  it('derives distinct uids for distinct IPs, also across bases', () => {
    expect(unixUidForIp('127.0.1.2', 200_000)).toBe(200_000 + 258);
    expect(unixUidForIp('127.0.2.2', 200_000)).not.toBe(unixUidForIp('127.0.1.2', 200_000));
    expect(unixUidRange('127.0.1', 200_000)).toEqual([200_258, 200_510]);
  });
});

describe('image tags choose the version', () => {
  const t3 = { entrypoint: ['tarantool'], env: { PATH: '/opt/3' } };
  const t26 = { entrypoint: ['tarantool'], env: { PATH: '/opt/2.6' } };
  const table = { 'tarantool/tarantool': t3, 'tarantool/tarantool:3': t3, 'tarantool/tarantool:2': t26 };
  it.each([
    ['tarantool/tarantool:3.8', t3],
    ['tarantool/tarantool:3', t3],
    ['docker.io/tarantool/tarantool:3.8.0', t3],
    ['tarantool/tarantool:2.6', t26],
    ['tarantool/tarantool:2.11.4', t26],
    ['tarantool/tarantool', t3],
    ['tarantool/tarantool:latest', t3],
  ])('%s', (image, spec) => expect(lookupImage(table, image)).toBe(spec));

  it('a tag prefix matches whole version parts only', () => {
    expect(imageTag('tarantool/tarantool:30.1')).toBe('30.1');
    expect(lookupImage({ 'tarantool/tarantool:3': t3 }, 'tarantool/tarantool:30.1')).toBeUndefined();
    expect(lookupImage({ 'tarantool/tarantool:3': t3 }, 'tarantool/tarantool:3-slim')).toBe(t3);
    expect(imageTag('registry:5000/tarantool/tarantool')).toBe('');
  });
});
