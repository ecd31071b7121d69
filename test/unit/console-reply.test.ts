import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ReplySplitter, parseReply, consoleErrorOf, ReplyParseError } from '../../agent/console/reply.js';

// Replies captured from Tarantool 2.6.0's console (see TARANTOOL.md and agent/console/reply.ts).
const REPLIES = {
  nothing: '---\n...\n',
  nil: '---\n- null\n...\n',
  multi: '---\n- 1\n- null\n- a\n...\n',
  binary: '---\n- !!binary //4=\n...\n',
  multilineError:
    '---\n- error: "builtin/box/load_cfg.lua:599: Please call box.cfg{} first\\nstack traceback:\\n\\tbuiltin/box/load_cfg.lua:599:\n    in function \'__index\'\\n\\t[string \\"return box.info\\"]:1: in main chunk"\n...\n',
  wrappedString:
    "---\n- 'ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab cd ab\n  cd ab cd'\n...\n",
  dotsInside: "---\n- '\n\n  ...\n\n  '\n...\n",
  bigInt: '---\n- 9007199254740993\n- 4611686018427387904\n- 12\n...\n',
  map: '---\n- a:\n  - 1\n  - 2\n  5: 3\n...\n',
};

describe('parseReply', () => {
  it('returns no values for an empty reply and null for an explicit nil', () => {
    expect(parseReply(REPLIES.nothing)).toEqual([]);
    expect(parseReply(REPLIES.nil)).toEqual([null]);
  });

  it('returns one item per returned value', () => {
    expect(parseReply(REPLIES.multi)).toEqual([1, null, 'a']);
  });

  it('decodes !!binary into bytes', () => {
    const [v] = parseReply(REPLIES.binary);
    expect(v).toBeInstanceOf(Uint8Array);
    expect([...(v as Uint8Array)]).toEqual([0xff, 0xfe]);
  });

  it('reads multi-line (wrapped) errors whole', () => {
    const values = parseReply(REPLIES.multilineError);
    const msg = consoleErrorOf(values);
    expect(msg).toContain('Please call box.cfg{} first\nstack traceback:');
    expect(msg).toContain("in function '__index'");
  });

  it('unfolds strings the emitter wrapped, and keeps "..." inside a scalar', () => {
    expect(parseReply(REPLIES.wrappedString)).toEqual(['ab cd '.repeat(14) + 'ab cd']);
    expect(parseReply(REPLIES.dotsInside)).toEqual(['\n...\n']);
  });

  it('keeps integers beyond 2^53 exact as bigint, smaller ones as numbers', () => {
    expect(parseReply(REPLIES.bigInt)).toEqual([9007199254740993n, 4611686018427387904n, 12]);
  });

  it('turns non-string map keys into strings', () => {
    expect(parseReply(REPLIES.map)).toEqual([{ a: [1, 2], '5': 3 }]);
  });

  it('rejects what is not a console reply', () => {
    expect(() => parseReply('hello\n...\n')).toThrow(ReplyParseError);
    expect(() => parseReply('---\n- [unclosed\n...\n')).toThrow(ReplyParseError);
    expect(() => parseReply('---\na: 1\n...\n')).toThrow(/not a YAML list/);
  });

  it('tells a console error from a returned table only by shape', () => {
    expect(consoleErrorOf([{ error: 'x' }])).toBe('x');
    expect(consoleErrorOf([{ error: 'x', other: 1 }])).toBeNull();
    expect(consoleErrorOf(['x'])).toBeNull();
  });
});

describe('ReplySplitter', () => {
  const all = Object.values(REPLIES).join('');
  const expected = Object.values(REPLIES);

  it('splits a stream of several replies in one chunk', () => {
    expect(new ReplySplitter().push(Buffer.from(all))).toEqual(expected);
  });

  it('gives the same replies however the stream is cut into chunks (including inside the terminator and UTF-8)', () => {
    const stream = Buffer.from(all + "---\n- 'héllo ✓ wörld'\n...\n");
    const want = [...expected, "---\n- 'héllo ✓ wörld'\n...\n"];
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const s = new ReplySplitter();
        const got: string[] = [];
        for (let i = 0; i + 1 < points.length; i++) got.push(...s.push(stream.subarray(points[i], points[i + 1])));
        expect(got).toEqual(want);
        expect(s.pending).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('splits byte by byte', () => {
    const s = new ReplySplitter();
    const got: string[] = [];
    for (const b of Buffer.from(REPLIES.multilineError + REPLIES.nil)) got.push(...s.push(Buffer.from([b])));
    expect(got).toEqual([REPLIES.multilineError, REPLIES.nil]);
  });

  it('holds an incomplete reply until its end arrives', () => {
    const s = new ReplySplitter();
    expect(s.push(Buffer.from('---\n- 1\n..'))).toEqual([]);
    expect(s.pending).toBe(10);
    expect(s.push(Buffer.from('.\n---\n'))).toEqual(['---\n- 1\n...\n']);
    expect(s.pending).toBe(4);
  });
});
