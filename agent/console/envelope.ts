// The envelope that makes console calls unambiguous (TARANTOOL.md: `- error:` is indistinguishable
// from a returned {error=...}, requests must be one line). Once per connection the client installs
// a Lua helper; every call then is the single line
//   return package.loaded['shoal.envelope.v1'](<id>, '<chunk, base64>', '<JSON args, base64>')
// The helper compiles the chunk with loadstring (so it may span lines, hold any quotes), runs it in
// pcall with the decoded args as `...`, and returns one JSON string {id, ok, r}: r is the value or
// {message, type, code} of the error. The id lets the client prove a reply belongs to its request.
import { isRecord } from '../../common/json.js';
import { LuaError, ConsoleProtocolError } from './errors.js';
import type { ReplyValue } from './reply.js';

/** A value that survives JSON both ways (eval arguments). null arrives in Lua as nil. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const HELPER = 'shoal.envelope.v1';

// No Lua comments here: the lines are joined into one request line.
const INSTALL_LINES = [
  "local json = require('json').new()",
  'json.cfg({encode_use_tostring = true, encode_sparse_convert = true, encode_invalid_numbers = true,',
  '  encode_max_depth = 128, decode_max_depth = 128})',
  "local digest = require('digest')",
  'local function field(e, k) local ok, v = pcall(function() return e[k] end) if ok then return v end return nil end',
  'local function describe(e)',
  "  if type(e) == 'cdata' and field(e, 'message') ~= nil then",
  "    return {message = tostring(field(e, 'message')), type = field(e, 'type'), code = field(e, 'code')}",
  '  end',
  "  if type(e) == 'table' then",
  '    local ok, s = pcall(json.encode, e)',
  '    return {message = tostring(e.message or (ok and s) or e)}',
  '  end',
  '  return {message = tostring(e)}',
  'end',
  `package.loaded['${HELPER}'] = function(id, code, args)`,
  "  local f, err = loadstring(digest.base64_decode(code), '=agent')",
  '  local ok, r',
  '  if f == nil then ok, r = false, err else',
  '    local a = json.decode(digest.base64_decode(args))',
  '    local n = table.maxn(a)',
  '    for i = 1, n do if a[i] == nil then a[i] = nil end end',
  '    ok, r = pcall(f, unpack(a, 1, n))',
  '  end',
  '  if not ok then r = describe(r) end',
  '  local s, out = pcall(json.encode, {id = id, ok = ok, r = r})',
  "  if not s then out = json.encode({id = id, ok = false, r = {message = 'cannot encode the result as JSON: ' .. tostring(out)}}) end",
  '  return out',
  'end',
  'return true',
];

/** The one-line request that installs the helper on a fresh connection; its reply is `[true]`. */
export const INSTALL_LINE = INSTALL_LINES.join(' ');

/** The one-line request that runs `lua` with `args` as `...` under request id `id`. */
export function callLine(id: number, lua: string, args: readonly JsonValue[]): string {
  const code = Buffer.from(lua, 'utf8').toString('base64');
  const encodedArgs = Buffer.from(JSON.stringify(args), 'utf8').toString('base64');
  return `return package.loaded['${HELPER}'](${id}, '${code}', '${encodedArgs}')`;
}

/** Checks the reply to INSTALL_LINE. */
export function checkInstalled(values: readonly ReplyValue[]): void {
  if (values.length !== 1 || values[0] !== true) {
    throw new ConsoleProtocolError(`installing the call envelope failed: ${JSON.stringify(values, replacer)}`);
  }
}

/**
 * Decodes the reply of callLine(id, …): the chunk's returned value, or throws LuaError for a Lua
 * failure and ConsoleProtocolError for anything that is not our envelope or carries another id.
 */
export function decodeCallReply(values: readonly ReplyValue[], id: number): unknown {
  const only = values.length === 1 ? values[0] : undefined;
  // Tarantool's YAML encoder prints strings that are not valid UTF-8 as !!binary.
  const text = typeof only === 'string' ? only : only instanceof Uint8Array ? Buffer.from(only).toString('utf8') : undefined;
  if (text === undefined) {
    throw new ConsoleProtocolError(`console reply is not a call envelope: ${JSON.stringify(values, replacer).slice(0, 500)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConsoleProtocolError(`call envelope is not JSON: ${text.slice(0, 500)}`, text);
  }
  if (!isRecord(parsed) || typeof parsed['ok'] !== 'boolean') {
    throw new ConsoleProtocolError(`call envelope has no "ok": ${text.slice(0, 500)}`, text);
  }
  if (parsed['id'] !== id) {
    throw new ConsoleProtocolError(`reply to request ${String(parsed['id'])} arrived for request ${id}`, text);
  }
  const r = parsed['r'];
  if (parsed['ok']) return r;
  const err = isRecord(r) ? r : {};
  throw new LuaError(
    typeof err['message'] === 'string' ? err['message'] : 'unknown Lua error',
    typeof err['type'] === 'string' ? err['type'] : undefined,
    typeof err['code'] === 'number' ? err['code'] : undefined,
  );
}

function replacer(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
