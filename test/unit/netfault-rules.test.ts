import { describe, expect, it } from 'vitest';
import { netFaultRules } from '../../localcluster/netfault.js';

const chains = { INPUT: 'NF-IN', OUTPUT: 'NF-OUT' };
const t = { ip: '127.0.1.7', unixUid: 61007 };

describe('netFaultRules', () => {
  it('cuts both ways by uid and address', () => {
    expect(netFaultRules(chains, t, 'all')).toEqual([
      ['NF-OUT', ['-m', 'owner', '--uid-owner', '61007', '-j', 'DROP']],
      ['NF-OUT', ['-d', '127.0.1.7/32', '-j', 'DROP']],
      ['NF-IN', ['-d', '127.0.1.7/32', '-j', 'DROP']],
    ]);
  });

  it('out drops only what the pod sends', () => {
    expect(netFaultRules(chains, t, 'out')).toEqual([['NF-OUT', ['-m', 'owner', '--uid-owner', '61007', '-j', 'DROP']]]);
  });

  it('in marks the pod connections first and drops what others send on them', () => {
    const r = netFaultRules(chains, t, 'in');
    expect(r.slice(0, 2).every(([, spec]) => spec.includes('CONNMARK'))).toBe(true);
    expect(r.slice(2).every(([, spec]) => spec.at(-1) === 'DROP' && spec.includes('!') && spec.includes('61007'))).toBe(true);
    // never a rule that drops what the pod itself sends
    expect(r.some(([, spec]) => spec.join(' ') === '-m owner --uid-owner 61007 -j DROP')).toBe(false);
  });

  it('a port cut spares root (the harness, the kubelet) and only that port', () => {
    const r = netFaultRules(chains, t, { port: 8080 });
    expect(r).toEqual([
      ['NF-OUT', ['-p', 'tcp', '-d', '127.0.1.7/32', '--dport', '8080', '-m', 'owner', '!', '--uid-owner', '0', '-j', 'DROP']],
      ['NF-OUT', ['-p', 'tcp', '--dport', '8080', '-m', 'owner', '--uid-owner', '61007', '-j', 'DROP']],
    ]);
    expect(() => netFaultRules(chains, t, { port: 0 })).toThrow(/out of range/);
  });
});
