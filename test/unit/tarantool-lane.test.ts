// The Tarantool version a person names for the local world (`npm run bench -- --tarantool 2.6`,
// SHOAL_TARANTOOL_LANE) and whether a reported version belongs to it. Pure: no binary is run.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultLane, parseLane, tarantoolImage, versionMatchesLane } from '../../demo/tarantool-binaries.js';
import { ShoalError } from '../../common/errors.js';

describe('parseLane', () => {
  it('accepts exactly the lanes the local cluster runs', () => {
    expect(parseLane('3', '--tarantool')).toBe('3');
    expect(parseLane('2.6', '--tarantool')).toBe('2.6');
  });

  it.each(['3.8', '2', '2.6.0', '1.10', '', ' 3', 'latest'])('rejects %j with the accepted values and where it came from', (v) => {
    let err: unknown;
    try {
      parseLane(v, '--tarantool');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShoalError);
    expect((err as Error).message).toContain(`--tarantool ${JSON.stringify(v)} is not a Tarantool version`);
    expect((err as Error).message).toContain('use one of 3, 2.6');
  });
});

describe('defaultLane', () => {
  afterEach(() => void vi.unstubAllEnvs());

  it('is 3 unless SHOAL_TARANTOOL_LANE names another lane', () => {
    vi.stubEnv('SHOAL_TARANTOOL_LANE', '');
    expect(defaultLane()).toBe('3');
    vi.stubEnv('SHOAL_TARANTOOL_LANE', '2.6');
    expect(defaultLane()).toBe('2.6');
  });

  it('names the variable when its value is not a lane', () => {
    vi.stubEnv('SHOAL_TARANTOOL_LANE', '4');
    expect(() => defaultLane()).toThrow(/SHOAL_TARANTOOL_LANE "4" is not a Tarantool version/);
  });
});

describe('versionMatchesLane', () => {
  it.each([
    ['3', '3.8.0-0-g1234567', true],
    ['3', 'Tarantool 3.8.0-0-g1234567', true],
    ['3', '2.6.0-0-gc6a2a0c', false],
    ['2.6', '2.6.0-0-gc6a2a0c', true],
    ['2.6', 'Tarantool 2.6.0', true],
    ['2.6', '2.11.1-0-g96877bd', false],
    ['2.6', '3.8.0', false],
  ] as const)('lane %s, version %s: %s', (lane, version, ok) => {
    expect(versionMatchesLane(lane, version)).toBe(ok);
  });

  it('each lane has its own image tag, which its versions match', () => {
    expect(tarantoolImage('3')).toMatch(/:3\./);
    expect(tarantoolImage('2.6')).toMatch(/:2\.6$/);
  });
});
