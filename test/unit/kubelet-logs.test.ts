import { describe, expect, it } from 'vitest';
import { parseLogQuery, tailOffset } from '../../localcluster/kubelet/server.js';

describe('kubectl logs support', () => {
  it.each([
    ['a\nb\nc\n', 1, 'c\n'],
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc', 2, 'b\nc'],
    ['a\nb\nc\n', 10, 'a\nb\nc\n'],
    ['a\nb\nc\n', 0, ''],
    ['', 3, ''],
  ])('the last lines of %j (%i) are %j', (text, n, tail) => {
    const buf = Buffer.from(text);
    expect(buf.subarray(tailOffset(buf, n)).toString()).toBe(tail);
  });

  it('reads follow, tailLines and limitBytes from the query', () => {
    expect(parseLogQuery(new URLSearchParams('follow=true&tailLines=5&limitBytes=100'))).toEqual({ follow: true, tailLines: 5, limitBytes: 100 });
    expect(parseLogQuery(new URLSearchParams('tailLines=x'))).toEqual({ follow: false });
  });
});
