// The console client against real Tarantool 2.6 processes: values, errors, ordering under load,
// timeouts, aborts, a killed process, reconnects and close().
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleClient } from '../../agent/console/client.js';
import { ConsoleClosedError, ConsoleTimeoutError, LuaError, TarantoolGoneError } from '../../agent/console/errors.js';
import { TarantoolFleet, type TarantoolInstance } from '../support/tarantool.js';

process.env.SHOAL_LOG_LEVEL ??= 'silent';

describe('console client', () => {
  const fleet = new TarantoolFleet();
  let t: TarantoolInstance;
  let c: ConsoleClient;

  beforeAll(async () => {
    t = await fleet.start('console');
    c = fleet.client(t, { timeoutMs: 20_000 });
    await c.connect({ timeoutMs: 30_000 });
  });
  afterAll(() => fleet.cleanup());

  it('returns values of every kind, with args as `...`', async () => {
    expect(await c.eval('return 1 + 2')).toBe(3);
    expect(await c.eval("return 'héllo ✓'")).toBe('héllo ✓');
    expect(await c.eval('return nil')).toBeUndefined();
    expect(await c.eval('return {a = {1, 2, 3}, b = true, c = "x"}')).toEqual({ a: [1, 2, 3], b: true, c: 'x' });
    expect(await c.eval('local a, b, c = ... return {a, b, c == nil}', [1, 'two', null])).toEqual([1, 'two', true]);
    expect(await c.eval('return ...', [{ nested: { list: [1, 'a'] } }])).toEqual({ nested: { list: [1, 'a'] } });
  });

  it('runs multi-line chunks with quotes, brackets and comments', async () => {
    const lua = [
      '-- a comment',
      "local s = 'single \\' quote' .. \"double \\\" quote\" .. [[long ]] .. '\\n'",
      'local t = {}',
      'for i = 1, 3 do',
      '  t[i] = s',
      'end',
      'return #t, s',
    ].join('\n');
    expect(await c.eval(lua)).toBe(3);
    expect(await c.eval(lua.replace('return #t, s', 'return s'))).toBe('single \' quotedouble " quotelong \n');
  });

  it('carries a 1 MB reply and a 256 KB chunk intact', async () => {
    const big = (await c.eval("return string.rep('0123456789abcdef ', 65536)")) as string;
    expect(big.length).toBe(17 * 65536);
    expect(big).toBe('0123456789abcdef '.repeat(65536));
    const payload = 'x'.repeat(256 * 1024);
    expect(await c.eval('local s = ... return #s', [payload])).toBe(payload.length);
  });

  it('throws LuaError for a raised error, with box.error type and code, and stays usable', async () => {
    await expect(c.eval("error('boom\\nsecond line')")).rejects.toMatchObject({ name: 'LuaError', luaMessage: 'agent:1: boom\nsecond line' });
    const err = (await c.eval('box.error(box.error.READONLY)').catch((e: unknown) => e)) as LuaError;
    expect(err).toBeInstanceOf(LuaError);
    expect(err.luaType).toBe('ClientError');
    expect(err.code).toBe(7);
    await expect(c.eval('this is not lua')).rejects.toBeInstanceOf(LuaError);
    await expect(c.eval("error({message = 'as a table'})")).rejects.toMatchObject({ luaMessage: 'as a table' });
    // A value that looks like the console's own error reply is just a value.
    expect(await c.eval("return {error = 'not an error'}")).toEqual({ error: 'not an error' });
    expect(await c.eval('return 42')).toBe(42);
  });

  it('sends raw lines and parses the YAML reply', async () => {
    expect(await c.request('return 1, nil, "a"')).toEqual([1, null, 'a']);
    expect(await c.request('x_shoal_test = 1')).toEqual([]);
  });

  it('survives 10,000 sequential calls, each answered with its own value', async () => {
    for (let i = 0; i < 10_000; i++) {
      const v = await c.eval('return ...', [i]);
      if (v !== i) throw new Error(`call ${i} got ${String(v)}`);
    }
  });

  it('serves 100 concurrent callers without mixing replies', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        c.eval("local i = ... require('fiber').sleep(0.001 * (i % 3)) return {i = i, s = 'caller-' .. i}", [i]),
      ),
    );
    results.forEach((r, i) => expect(r).toEqual({ i, s: `caller-${i}` }));
  });

  it('times out a blocked call with ConsoleTimeoutError, then works again on a new connection', async () => {
    const started = Date.now();
    const err = await c.eval("require('fiber').sleep(30) return 1", [], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleTimeoutError);
    expect((err as ConsoleTimeoutError).stage).toBe('reply');
    expect(Date.now() - started).toBeLessThan(5_000);
    // The late reply of the sleeping call can never reach this one: that connection is gone.
    expect(await c.eval('return "after timeout"')).toBe('after timeout');
  });

  it('times out callers still in the queue and lets the others through', async () => {
    const blocker = c.eval("require('fiber').sleep(0.5) return 'blocker'", [], { timeoutMs: 10_000 });
    const queued = c.eval('return "queued"', [], { timeoutMs: 100 });
    await expect(queued).rejects.toMatchObject({ name: 'ConsoleTimeoutError', stage: 'queue' });
    expect(await blocker).toBe('blocker');
  });

  it('rejects with the caller\'s abort reason, in flight or queued', async () => {
    const ctl = new AbortController();
    const inFlight = c.eval("require('fiber').sleep(30)", [], { signal: ctl.signal });
    const queued = c.eval('return 1', [], { signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('stop now')), 100);
    await expect(inFlight).rejects.toThrow('stop now');
    await expect(queued).rejects.toThrow('stop now');
    expect(await c.eval('return 2')).toBe(2);
  });
});

describe('console client when Tarantool dies', () => {
  const fleet = new TarantoolFleet();
  afterAll(() => fleet.cleanup());

  it('turns a kill -9 under a call into TarantoolGoneError with the log tail, not a hang', async () => {
    const t = await fleet.start('victim');
    const c = fleet.client(t, { timeoutMs: 20_000 });
    await c.connect({ timeoutMs: 30_000 });
    await c.eval("require('log').info('last words before the kill')");
    const pending = c.eval("require('fiber').sleep(60)");
    const started = Date.now();
    setTimeout(() => void t.kill('SIGKILL'), 100);
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TarantoolGoneError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((err as TarantoolGoneError).logTail).toContain('last words before the kill');

    // Later calls: bounded by their timeout (retrying the connect), or at once with failFast.
    const t2 = Date.now();
    await expect(c.eval('return 1', [], { timeoutMs: 500 })).rejects.toBeInstanceOf(TarantoolGoneError);
    expect(Date.now() - t2).toBeLessThan(3_000);
    const t3 = Date.now();
    await expect(c.eval('return 1', [], { failFast: true })).rejects.toBeInstanceOf(TarantoolGoneError);
    expect(Date.now() - t3).toBeLessThan(1_000);

    // The same client reconnects once Tarantool is back.
    const events: boolean[] = [];
    c.onConnectionChange((up) => events.push(up));
    await t.spawn();
    expect(await c.eval('return "back"', [], { timeoutMs: 30_000 })).toBe('back');
    expect(events).toContain(true);
  });

  it('reports a fatal box.cfg error (UUID mismatch on restart) from the log when the process exits', async () => {
    const t = await fleet.start('fatal');
    const c = fleet.client(t, { timeoutMs: 20_000 });
    const configure = (uuid: string): Promise<unknown> =>
      c.eval("return require('shoal').configure({instance_uuid = ...}, {})", [uuid], { timeoutMs: 30_000 });
    const waitPhase = async (): Promise<string> => {
      for (;;) {
        const s = (await c.eval("return require('shoal').status()", [], { failFast: true })) as { phase: string };
        if (s.phase !== 'configuring') return s.phase;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await configure('11111111-1111-4111-8111-111111111111');
    expect(await waitPhase()).toBe('configured');
    await t.kill('SIGKILL');
    await t.spawn();
    await configure('22222222-2222-4222-8222-222222222222');
    const err = await waitPhase().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TarantoolGoneError);
    expect((err as TarantoolGoneError).logTail).toMatch(/Instance UUID mismatch/);
    expect((err as TarantoolGoneError).message).toMatch(/Instance UUID mismatch/);
  });

  it('close() rejects pending and queued calls with ConsoleClosedError', async () => {
    const t = await fleet.start('closing');
    const c = fleet.client(t, { timeoutMs: 20_000 });
    await c.connect({ timeoutMs: 30_000 });
    const pending = c.eval("require('fiber').sleep(30)");
    const queued = c.eval('return 1');
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    await expect(pending).rejects.toBeInstanceOf(ConsoleClosedError);
    await expect(queued).rejects.toBeInstanceOf(ConsoleClosedError);
    await expect(c.eval('return 1')).rejects.toBeInstanceOf(ConsoleClosedError);
    expect(c.connected).toBe(false);
  });
});
