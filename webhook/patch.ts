// The JSON Patch of a mutation: rfc6902's diff, with arrays compared in linear time. rfc6902 diffs
// arrays by a Levenshtein table, quadratic in their lengths: a labelled pod with 800 env entries took
// more than 30 s to answer (the API server gives an admission webhook 5 s). A mutation inserts or
// rewrites a few entries of a list, so trimming the common head and tail and diffing what remains
// position by position (or, when the lengths differ, the entries that keep their name, then removing
// and adding the rest) finds the same small patch in O(n).
import { isDeepStrictEqual } from 'node:util';
import { Pointer, type Operation } from 'rfc6902';
import { diffAny, type Diff } from 'rfc6902/diff.js';
import { isRecord } from '../common/json.js';

function diffArrays(input: unknown[], output: unknown[], ptr: Pointer): Operation[] {
  let head = 0;
  while (head < input.length && head < output.length && isDeepStrictEqual(input[head], output[head])) head++;
  let tail = 0;
  while (
    tail < input.length - head &&
    tail < output.length - head &&
    isDeepStrictEqual(input[input.length - 1 - tail], output[output.length - 1 - tail])
  ) {
    tail++;
  }
  const removed = input.length - head - tail;
  const added = output.length - head - tail;
  const ops: Operation[] = [];
  if (removed === added) {
    // Same place, same count: entries changed in place (a rewritten env value): diff each.
    // An entry that now carries another name is another entry: one replace, not a field-by-field rewrite.
    for (let i = head; i < head + removed; i++) {
      if (named(input[i]) && named(output[i]) && !sameName(input[i], output[i])) ops.push({ op: 'replace', path: ptr.add(String(i)).toString(), value: output[i] });
      else ops.push(...diff(input[i], output[i], ptr.add(String(i))));
    }
    return ops;
  }
  // Kubernetes lists are keyed by name: leading entries that keep their name (the Tarantool container
  // with Shoal's env and mounts, before the agent appended after it) are diffed in place, not rewritten.
  let kept = 0;
  while (kept < removed && kept < added && sameName(input[head + kept], output[head + kept])) kept++;
  for (let i = head; i < head + kept; i++) ops.push(...diff(input[i], output[i], ptr.add(String(i))));
  // Removed from the back, so every index still names the element it meant; then the new entries.
  for (let i = head + removed - 1; i >= head + kept; i--) ops.push({ op: 'remove', path: ptr.add(String(i)).toString() });
  for (let i = head + kept; i < head + added; i++) ops.push({ op: 'add', path: ptr.add(String(i)).toString(), value: output[i] });
  return ops;
}

const named = (v: unknown): boolean => isRecord(v) && typeof v.name === 'string';
const sameName = (a: unknown, b: unknown): boolean => named(a) && named(b) && (a as { name: string }).name === (b as { name: string }).name;

/** rfc6902's walk for objects and scalars, this array diff at every level. */
const diff: Diff = (input, output, ptr) =>
  Array.isArray(input) && Array.isArray(output) ? diffArrays(input, output, ptr) : diffAny(input, output, ptr, diff);

/** The JSON Patch (RFC 6902) that turns `before` into `after`, in time linear in their size. */
export function jsonPatch(before: unknown, after: unknown): Operation[] {
  return diff(before, after, new Pointer());
}
