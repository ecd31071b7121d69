// A StatefulSet's sharding role (SPEC §4b) from the objects users write: its Tarantool 3 config's
// sharding.roles, or the annotation shoal.dev/sharding-role. The config wins. Pure table tests.
import { describe, expect, it } from 'vitest';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { agreeOnConfigRole, resolveShardingRole, roleFromAnnotation, roleFromConfigRoles, type ShardingRole } from '../../agent/decide/sharding.js';
import { configShardingRole, parseUserConfig } from '../../agent/instance/native-config.js';
import { statefulSetToSpec } from '../../agent/kube/statefulsets.js';
import { ANNOTATIONS } from '../../common/names.js';

const ANN = ANNOTATIONS.shardingRole;

describe('roleFromConfigRoles: sharding.roles of the Tarantool config', () => {
  it.each<[unknown, ShardingRole | null, RegExp | null]>([
    [undefined, null, null],
    [null, null, null],
    [[], null, null],
    [['storage'], 'storage', null],
    [['storage', 'rebalancer'], 'storage', null],
    [['router'], 'router', null],
    [['router', 'storage'], null, /both storage and router/],
    [['rebalancer'], null, /rebalancer without storage/],
    [['storage', 'shard'], 'storage', /"shard": Tarantool knows storage, router and rebalancer/],
    ['storage', null, /must be a list/],
    [[1], null, /must be a list/],
  ])('%j → %s', (roles, role, problem) => {
    const r = roleFromConfigRoles(roles);
    expect(r.role).toBe(role);
    if (problem === null) expect(r.problems).toEqual([]);
    else expect(r.problems.join(' ')).toMatch(problem);
  });
});

describe('roleFromAnnotation', () => {
  it.each<[string | undefined, ShardingRole | null, boolean]>([
    [undefined, null, false],
    ['storage', 'storage', false],
    ['router', 'router', false],
    ['Storage', null, true],
    ['', null, true],
  ])('%j → %s', (value, role, problem) => {
    const r = roleFromAnnotation(value, ANN);
    expect(r.role).toBe(role);
    expect(r.problems.length > 0).toBe(problem);
    if (problem) expect(r.problems[0]).toContain(ANN);
  });
});

describe('resolveShardingRole: the config wins over the annotation', () => {
  const cfg = (role: ShardingRole | null) => ({ role, problems: [] });
  const ann = (role: ShardingRole | null) => ({ role, problems: [] });
  it.each<[ShardingRole | null | 'unknown', ShardingRole | null, ShardingRole | null, 'config' | 'annotation' | null, boolean]>([
    // config (unknown = no instance has reported it yet), annotation → role, source, a problem
    ['unknown', null, null, null, false],
    [null, null, null, null, false],
    ['storage', null, 'storage', 'config', false],
    [null, 'router', 'router', 'annotation', false],
    ['unknown', 'storage', 'storage', 'annotation', false],
    ['router', 'router', 'router', 'config', false],
    ['storage', 'router', 'storage', 'config', true],
    ['router', 'storage', 'router', 'config', true],
  ])('config %s, annotation %s → %s from %s', (c, a, role, source, problem) => {
    const r = resolveShardingRole(c === 'unknown' ? null : cfg(c), ann(a), ANN);
    expect(r).toMatchObject({ role, source });
    expect(r.problems.length > 0).toBe(problem);
    if (problem) expect(r.problems[0]).toMatch(/the config wins/);
  });

  it('carries the problems of both sources', () => {
    const r = resolveShardingRole({ role: null, problems: ['c'] }, { role: null, problems: ['a'] }, ANN);
    expect(r.problems).toEqual(['c', 'a']);
  });
});

describe('agreeOnConfigRole: the instances of one StatefulSet report one role', () => {
  it('is unknown until an instance reports', () => {
    expect(agreeOnConfigRole([undefined, undefined])).toBeNull();
  });
  it('is the role they agree on, without duplicate problems', () => {
    expect(agreeOnConfigRole([{ pod: 's-0', role: 'storage', problems: ['p'] }, undefined, { pod: 's-2', role: 'storage', problems: ['p'] }])).toEqual({
      role: 'storage',
      problems: ['p'],
    });
  });
  it('is no role, with the reason, while they disagree (a rollout changing the template)', () => {
    const r = agreeOnConfigRole([{ pod: 's-0', role: 'storage', problems: [] }, { pod: 's-1', role: null, problems: [] }]);
    expect(r?.role).toBeNull();
    expect(r?.problems.join()).toMatch(/s-0: storage, s-1: none/);
  });
});

describe('where the roles are read', () => {
  it('the user config: sharding.roles', () => {
    expect(configShardingRole(parseUserConfig('sharding:\n  roles: [storage]\n').config)).toEqual({ role: 'storage', problems: [] });
    expect(configShardingRole(parseUserConfig('credentials: {}\n').config)).toEqual({ role: null, problems: [] });
  });
  it('the StatefulSet: the annotation, a bad value a problem for the Warning Event', () => {
    const sts = (annotations: Record<string, string>): V1StatefulSet => ({ metadata: { name: 'router', annotations } });
    expect(statefulSetToSpec(sts({ [ANN]: 'router' }))).toMatchObject({ shardingRole: 'router', problems: [] });
    expect(statefulSetToSpec(sts({}))).toMatchObject({ shardingRole: null, problems: [] });
    const bad = statefulSetToSpec(sts({ [ANN]: 'routers' }));
    expect(bad.shardingRole).toBeNull();
    expect(bad.problems.join()).toContain('neither "storage" nor "router"');
  });
});
