import { describe, expect, it } from 'vitest';
import { unsupportedVersion, versionSupport } from '../../agent/tarantool/version.js';

describe('versionSupport', () => {
  it.each([
    ['3.8.0-0-gdce7be8a79', true],
    ['3.0.0-entrypoint-1-g123', true],
    ['4.1.0', true],
    ['2.6.0-0-g47aa4e01e', true],
    ['2.6.3-0-gcd487a2', true],
    ['2.5.3-0-gf93e48013', false],
    ['2.11.4-0-g1', false],
    ['2.10.0', false],
    ['1.10.15-0-g2b5f4e3', false],
    ['garbage', false],
  ])('%s supported: %s', (v, ok) => expect(versionSupport(v).supported).toBe(ok));

  it('says what to do about an unsupported version', () => {
    expect(unsupportedVersion('1.10.15')).toMatch(/1\.10\.15 is not supported.*tarantool\/tarantool:3/);
    expect(unsupportedVersion(undefined)).toBeNull();
    expect(unsupportedVersion('3.8.0')).toBeNull();
  });
});
