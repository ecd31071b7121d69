import { describe, expect, it } from 'vitest';
import { decodePersistedState, persistedStateTerm } from '../../agent/coordinator/state-codec.js';
import { emptyState } from '../../agent/coordinator/reconcile.js';
import { formed, persisted } from './coordinator-fixtures.js';
import { Sim } from './coordinator-sim.js';

describe('decodePersistedState', () => {
  it('round-trips what the coordinator writes', () => {
    const sim = new Sim();
    sim.run([...Array.from({ length: 8 }, () => ({ t: 'tick', ms: 1000 }) as const), { t: 'template' }, { t: 'tick', ms: 1000 }]);
    const written = JSON.parse(JSON.stringify(sim.state)) as unknown;
    expect(decodePersistedState(written)).toEqual(sim.state);
    expect(decodePersistedState(emptyState())).toEqual(emptyState());
  });

  it.each([
    ['not an object', [], /state must be an object/],
    ['a negative term', { term: -1 }, /state.term must be a non-negative integer/],
    ['a master that is no member', { term: 1, replicasets: { s: { master: 'x', members: [] } } }, /state.replicasets.s.master x is not a member/],
    ['an unknown quarantine reason', { term: 1, replicasets: { s: { master: null, members: [{ pod: 'a', uuid: 'u', id: null }], quarantined: [{ pod: 'a', why: 'bored', sinceMs: 0 }] } } }, /quarantined\[0\].why must be one of/],
    ['a member without uuid', { term: 1, replicasets: { s: { members: [{ pod: 'a' }] } } }, /members\[0\].uuid must be a non-empty string/],
  ])('refuses %s, saying what is wrong', (_what, raw, message) => {
    expect(() => decodePersistedState(raw)).toThrow(message);
  });

  it('accepts state written before a field existed (masterQuorum → null)', () => {
    const { state } = formed('s', 1);
    const { masterQuorum: _dropped, ...older } = state;
    expect(decodePersistedState({ term: 3, coordinator: 'p', replicasets: { s: older } }).replicasets.s?.masterQuorum).toBeNull();
  });

  it('exposes the term and holder to the state store', () => {
    const s = persisted(4, {});
    expect(persistedStateTerm.get(s)).toEqual({ term: 4, coordinator: 'coordinator-0' });
    expect(persistedStateTerm.set(s, 5, 'p-1')).toMatchObject({ term: 5, coordinator: 'p-1' });
  });
});
