import { describe, expect, it } from 'vitest';
import { callLine, decodeCallReply, checkInstalled, INSTALL_LINE } from '../../agent/console/envelope.js';
import { LuaError, ConsoleProtocolError } from '../../agent/console/errors.js';

describe('call envelope', () => {
  it('puts any chunk on one line, base64-encoded', () => {
    const lua = "local x = 'a\\n'\nreturn x .. \"quote ' \\\" ]]\"\n";
    const line = callLine(7, lua, [1, 'two', null, { k: [true] }]);
    expect(line).not.toContain('\n');
    const [, code, args] = /\(7, '([^']*)', '([^']*)'\)$/.exec(line) ?? [];
    expect(Buffer.from(code ?? '', 'base64').toString('utf8')).toBe(lua);
    expect(JSON.parse(Buffer.from(args ?? '', 'base64').toString('utf8'))).toEqual([1, 'two', null, { k: [true] }]);
    expect(INSTALL_LINE).not.toContain('\n');
    expect(INSTALL_LINE).not.toContain('--');
  });

  it('decodes a value, and a Lua error into LuaError with type and code', () => {
    expect(decodeCallReply(['{"id":3,"ok":true,"r":{"a":1}}'], 3)).toEqual({ a: 1 });
    expect(decodeCallReply(['{"id":3,"ok":true}'], 3)).toBeUndefined();
    try {
      decodeCallReply(['{"id":4,"ok":false,"r":{"message":"read-only","type":"ClientError","code":7}}'], 4);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(LuaError);
      expect(err).toMatchObject({ luaMessage: 'read-only', luaType: 'ClientError', code: 7 });
    }
  });

  it('accepts the envelope as !!binary (non-UTF-8 strings)', () => {
    expect(decodeCallReply([Buffer.from('{"id":1,"ok":true,"r":"x"}')], 1)).toBe('x');
  });

  it('refuses replies that are not ours or belong to another request', () => {
    expect(() => decodeCallReply([{ error: 'syntax' }], 1)).toThrow(ConsoleProtocolError);
    expect(() => decodeCallReply(['not json'], 1)).toThrow(ConsoleProtocolError);
    expect(() => decodeCallReply(['{"id":2,"ok":true}'], 1)).toThrow(/request 2 arrived for request 1/);
    expect(() => decodeCallReply([], 1)).toThrow(ConsoleProtocolError);
    expect(() => checkInstalled([{ error: 'x' }])).toThrow(ConsoleProtocolError);
    expect(() => checkInstalled([true])).not.toThrow();
  });
});
