// The webhook's JSON Patch: whatever the two documents, the patch turns one into the other; for a
// mutation's shape (a few entries inserted into long lists) it stays as small as the change.
import fc from 'fast-check';
import { applyPatch } from 'rfc6902';
import { describe, expect, it } from 'vitest';
import { handleReview } from '../../webhook/review.js';
import { jsonPatch } from '../../webhook/patch.js';
import { applied, OPTS, review, stsPod, tarantoolContainer, type ReviewResponse } from '../support/webhook-fixtures.js';

function apply(before: unknown, after: unknown): unknown {
  const doc = { root: structuredClone(before) };
  const ops = jsonPatch(before, after).map((op) => ({ ...op, path: `/root${op.path}`, ...('from' in op ? { from: `/root${op.from}` } : {}) }));
  const errors = applyPatch(doc, ops).filter((e) => e !== null);
  if (errors.length > 0) throw new Error(`patch did not apply: ${errors.map(String).join(', ')}`);
  return doc.root;
}

// JSON values whose arrays share entries, so head/tail trimming and in-place diffs are exercised.
const entry = fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.record({ name: fc.constantFrom('x', 'y'), value: fc.nat(3) }));
const doc = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, entry, fc.array(tie('node'), { maxLength: 6 }), fc.dictionary(fc.constantFrom('k', 'l', 'm'), tie('node'), { maxKeys: 3 })),
})).node;

describe('jsonPatch', () => {
  it('turns any JSON document into any other', () => {
    fc.assert(
      fc.property(doc, doc, (a, b) => {
        expect(apply(a, b)).toEqual(b);
      }),
      { numRuns: 3_000 },
    );
  });

  it('turns a list into the list with entries inserted, removed or rewritten anywhere', () => {
    const list = fc.array(entry, { maxLength: 40 });
    const edit = fc.record({ at: fc.nat(40), remove: fc.nat(3), insert: fc.array(entry, { maxLength: 3 }) });
    fc.assert(
      fc.property(list, edit, (before, e) => {
        const after = [...before];
        after.splice(Math.min(e.at, after.length), e.remove, ...e.insert);
        expect(apply(before, after)).toEqual(after);
      }),
      { numRuns: 2_000 },
    );
  });

  it('an insertion into a long list is one operation, not a rewrite of the list', () => {
    const env = Array.from({ length: 800 }, (_, i) => ({ name: `VAR_${i}`, value: String(i) }));
    const after = [...env.slice(0, 400), { name: 'TT_INSTANCE_NAME', value: 'storage-0' }, ...env.slice(400)];
    expect(jsonPatch(env, after)).toEqual([{ op: 'add', path: '/400', value: { name: 'TT_INSTANCE_NAME', value: 'storage-0' } }]);
    expect(jsonPatch(env, env)).toEqual([]);
    expect(jsonPatch(env, [...env.slice(0, 10), { name: 'VAR_10', value: 'new' }, ...env.slice(11)])).toEqual([{ op: 'replace', path: '/10/value', value: 'new' }]);
  });

  it('diffs an entry that keeps its name in place, and replaces one that changed its name whole', () => {
    const tarantool = { name: 'tarantool', image: 't', env: [{ name: 'A', value: '1' }] };
    const changed = { ...tarantool, env: [...tarantool.env, { name: 'B', value: '2' }] };
    expect(jsonPatch([tarantool], [changed, { name: 'shoal-agent' }])).toEqual([
      { op: 'add', path: '/0/env/1', value: { name: 'B', value: '2' } },
      { op: 'add', path: '/1', value: { name: 'shoal-agent' } },
    ]);
    expect(jsonPatch([{ name: 'token', mountPath: '/a', readOnly: true }], [{ name: 'run', mountPath: '/b' }])).toEqual([
      { op: 'replace', path: '/0', value: { name: 'run', mountPath: '/b' } },
    ]);
  });
});

describe('the admission answer', () => {
  it('a pod with 800 env entries gets a patch of a few operations that applies and injects', () => {
    const env = Array.from({ length: 800 }, (_, i) => ({ name: `VAR_${i}`, value: String(i) }));
    const pod = stsPod({ containers: [tarantoolContainer({ env })] });
    const r = handleReview('pods', review('Pod', pod), OPTS);
    const response = r.body.response as ReviewResponse;
    expect(response.allowed).toBe(true);
    expect(r.log.ops).toBeLessThan(20);
    const out = applied(pod, response);
    expect(out.spec?.containers.find((c) => c.name === 'tarantool')?.env?.slice(0, 800)).toEqual(env);
    // Applied once more, the webhook has nothing left to do.
    const again = handleReview('pods', review('Pod', out), OPTS);
    expect((again.body.response as ReviewResponse).patch).toBeUndefined();
  });

  it('every patched answer to a random pod applies cleanly, and answering the result again changes nothing', () => {
    const envVar = fc.record({ name: fc.stringMatching(/^[A-Z_]{1,8}$/), value: fc.string({ maxLength: 5 }) });
    const pod = fc.record({ env: fc.array(envVar, { maxLength: 30 }), args: fc.option(fc.array(fc.constantFrom('--config', '/etc/t.yaml', 'x.lua'), { maxLength: 3 }), { nil: undefined }) });
    let patched = 0;
    fc.assert(
      fc.property(pod, (p) => {
        const object = stsPod({ containers: [tarantoolContainer({ env: p.env, ...(p.args ? { args: p.args } : {}) })] });
        const response = handleReview('pods', review('Pod', object), OPTS).body.response as ReviewResponse;
        if (!response.allowed) {
          expect(response.status?.message).toMatch(/\w/);
          return;
        }
        const out = applied(object, response);
        if (response.patch !== undefined) patched++;
        const again = handleReview('pods', review('Pod', out), OPTS).body.response as ReviewResponse;
        expect(again.allowed).toBe(true);
        expect(again.patch).toBeUndefined();
      }),
      { numRuns: 500 },
    );
    expect(patched).toBeGreaterThan(100);
  });
});
