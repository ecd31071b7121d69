// vshard is available to Tarantool 3.8 the way Shoal runs it (step 1 of issue 15): a real 3-lane
// instance loads the vendored vshard 0.1.42 (unpacked by scripts/provision-vshard.sh) from LUA_PATH,
// and the local Tarantool 3 image shows it on Tarantool's default package.path.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { shoalImages, VSHARD_IMAGE_DIR } from '../../demo/images.js';
import { vshardRoot } from '../../demo/tarantool-binaries.js';
import { TarantoolFleet } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

describe('vshard on the Tarantool 3 lane', () => {
  const fleet = new TarantoolFleet();
  afterAll(() => fleet.cleanup());

  it('loads in a 3.8 instance started as the tests start them', async () => {
    const n = await fleet.node('storage-0', { lane: '3', native: {} });
    const got = await n.lua(
      "local v = require('vshard') return {router = type(v.router.cfg), storage = type(v.storage.buckets_count), version = require('tarantool').version}",
    );
    expect(got).toMatchObject({ router: 'function', storage: 'function' });
    expect((got as { version: string }).version).toMatch(/^3\./);
  });

  it('is in the local Tarantool 3 image, where a rock would land on the default package.path', () => {
    const t3 = shoalImages()['tarantool/tarantool:3'];
    const mount = t3?.files?.find((f) => f.target === VSHARD_IMAGE_DIR);
    expect(mount?.source).toBe(join(vshardRoot(), 'vshard'));
    expect(existsSync(join(mount!.source, 'init.lua'))).toBe(true);
    // The 2.6 lane stays as it was.
    expect(shoalImages()['tarantool/tarantool:2']?.files?.map((f) => f.target)).toEqual(['/opt/shoal-image/tarantool-2.6/bin/tarantool']);
  });
});
