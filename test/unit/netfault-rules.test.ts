import { describe, expect, it } from 'vitest';
import { netFaultMarks, netFaultRules } from '../../localcluster/netfault.js';

const chains = { INPUT: 'NF-IN', OUTPUT: 'NF-OUT' };
const t = { ip: '127.0.1.7', unixUid: 61007 };
const drops = (r: [string, string[]][]): string[] => r.filter(([, spec]) => spec.at(-1) === 'DROP').map(([, spec]) => spec.join(' '));
const marks = (r: [string, string[]][]): string[] => r.filter(([, spec]) => spec.includes('CONNMARK')).map(([, spec]) => spec.join(' '));

describe('netFaultRules', () => {
  it('cuts both ways by uid and address', () => {
    expect(netFaultRules(chains, t, 'all')).toEqual([
      ['NF-OUT', ['-m', 'owner', '--uid-owner', '61007', '-j', 'DROP']],
      ['NF-OUT', ['-d', '127.0.1.7/32', '-j', 'DROP']],
      ['NF-IN', ['-d', '127.0.1.7/32', '-j', 'DROP']],
    ]);
  });

  // The stateless drop, then the pod's direction of what it dialed and of what was dialed to it.
  it.each([
    ['out', '-m owner --uid-owner 61007 -j DROP', 'ORIGINAL', 'REPLY'],
    ['in', '-d 127.0.1.7/32 -m owner ! --uid-owner 61007 -j DROP', 'REPLY', 'ORIGINAL'],
  ] as const)('%s marks connections first, then drops one direction only', (shape, stateless, dialedDir, answersDir) => {
    const r = netFaultRules(chains, t, shape);
    const m = netFaultMarks(t.unixUid);
    expect(drops(r)).toEqual([stateless, `-m connmark --mark ${m.dialed} -m conntrack --ctdir ${dialedDir} -j DROP`, `-m connmark --mark ${m.answers} -m conntrack --ctdir ${answersDir} -j DROP`]);
    expect(r.findIndex(([, s]) => s.at(-1) === 'DROP')).toBe(marks(r).length);
    // 'in' never drops what the pod sends
    if (shape === 'in') expect(drops(r)).not.toContain('-m owner --uid-owner 61007 -j DROP');
  });

  it('a port cut spares root (the harness, the kubelet) and only touches that port', () => {
    const r = netFaultRules(chains, t, { port: 8080 });
    expect(drops(r)).toEqual([
      `-m connmark --mark ${netFaultMarks(t.unixUid).port} -j DROP`,
      '-p tcp -d 127.0.1.7/32 --dport 8080 -m owner ! --uid-owner 0 -j DROP',
      '-p tcp --dport 8080 -m owner --uid-owner 61007 -j DROP',
    ]);
    expect(marks(r).every((s) => s.includes('--ctorigdstport 8080'))).toBe(true);
    expect(marks(r)[0]).toContain('! --uid-owner 0');
    expect(() => netFaultRules(chains, t, { port: 0 })).toThrow(/out of range/);
  });

  it('gives every pod and purpose its own mark', () => {
    const a = Object.values(netFaultMarks(61007));
    const b = Object.values(netFaultMarks(61008));
    expect(new Set([...a, ...b]).size).toBe(6);
  });
});
