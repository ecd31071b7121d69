import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

// Network faults for tests: cut one pod off (nothing it sends leaves, nothing sent to its IP
// arrives), heal it. Every pod process runs as the pod's own uid and binds the pod's loopback IP,
// so three iptables rules do it: OUTPUT `--uid-owner <uid>` (what the pod sends, whatever source
// address the kernel picks), OUTPUT and INPUT `-d <ip>` (what others send). DROP, not REJECT: a
// connection attempt hangs as across a real partition (verified on loopback).
// Other shapes (`NetFaultShape`, for the chaos suite):
//  - 'out': only what the pod sends is dropped (its peers stop hearing it; it still hears them: TCP
//    delivers their data to it even though its ACKs are lost, until their connections time out);
//  - 'in': only what reaches the pod is dropped (it stops hearing its peers; they still hear it).
//    A new connection cannot open in either one-way shape (TCP needs both ways); open ones carry the
//    other direction on (checked with two uids on loopback: the pod's data arrives and the peer's
//    does not, and the reverse);
//  - { port }: the connections to that port on the pod's IP dialed by other pods (uid ≠ 0: the
//    harness and the kubelet, root, still reach it) and those the pod dials to that port anywhere:
//    the agent mesh cut while Tarantool replication and the harness's /status still flow. What the
//    pod's listener sends back on a link a peer dialed can still arrive until that link's ws ping
//    fails (2 s) and it closes; from then on no mesh link of the pod works either way.
// Peers dial from 127.0.0.1, not from their pod IP, so the reverse direction of a connection cannot
// be told by address: connections are also marked (conntrack) by who dialed whom and dropped by
// direction, but a test here saw retransmissions pass such connmark-only rules, so the guarantee
// rests on the stateless owner/address rules each shape also has.
// The rules live in two dedicated chains jumped to from INPUT/OUTPUT; `healAll` removes the chains
// and the jumps, leaving the tables as they were. Stateless: the state is in iptables, so any
// process (a test file, the global teardown) can cut and heal.

const run = promisify(execFile);

export interface NetFaultTarget {
  ip: string;
  unixUid: number;
}

/** 'all': both ways; 'out': what the pod sends; 'in': what reaches it; { port }: one TCP port between pods. */
export type NetFaultShape = 'all' | 'out' | 'in' | { port: number };

export interface NetFault {
  cutOff(target: NetFaultTarget, shape?: NetFaultShape): Promise<void>;
  heal(target: NetFaultTarget, shape?: NetFaultShape): Promise<void>;
  isCutOff(target: NetFaultTarget, shape?: NetFaultShape): Promise<boolean>;
  /** Removes every rule, jump and chain this helper added. */
  healAll(): Promise<void>;
}

async function iptables(args: string[]): Promise<boolean> {
  try {
    await run('iptables', ['-w', '5', ...args]);
    return true;
  } catch {
    return false;
  }
}

async function must(args: string[]): Promise<void> {
  try {
    await run('iptables', ['-w', '5', ...args]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`iptables ${args.join(' ')} failed: ${stderr.trim()} (netfault needs root and Debian's iptables)`);
  }
}

/** `prefix` names the chains (`<prefix>-IN`, `<prefix>-OUT`); give each local cluster its own. */
export function createNetFault(prefix = 'SHOAL-NF'): NetFault {
  if (!/^[A-Za-z0-9_-]{1,24}$/.test(prefix)) throw new Error(`netfault chain prefix "${prefix}" must be 1-24 of [A-Za-z0-9_-]`);
  const chains = { INPUT: `${prefix}-IN`, OUTPUT: `${prefix}-OUT` } as const;

  const rules = (t: NetFaultTarget, shape: NetFaultShape = 'all'): [string, string[]][] => netFaultRules(chains, t, shape);

  const ensureChains = async (): Promise<void> => {
    for (const [builtin, chain] of Object.entries(chains)) {
      if (!(await iptables(['-n', '-L', chain]))) await iptables(['-N', chain]); // a racing creator is fine
      if (!(await iptables(['-C', builtin, '-j', chain]))) await must(['-I', builtin, '1', '-j', chain]);
    }
  };

  return {
    async cutOff(t, shape) {
      await ensureChains();
      for (const [chain, spec] of rules(t, shape)) {
        if (!(await iptables(['-C', chain, ...spec]))) await must(['-A', chain, ...spec]);
      }
    },
    async heal(t, shape) {
      for (const [chain, spec] of rules(t, shape)) {
        while (await iptables(['-D', chain, ...spec])) {
          // delete every copy
        }
      }
    },
    async isCutOff(t, shape) {
      for (const [chain, spec] of rules(t, shape)) if (!(await iptables(['-C', chain, ...spec]))) return false;
      return true;
    },
    async healAll() {
      for (const [builtin, chain] of Object.entries(chains)) {
        while (await iptables(['-D', builtin, '-j', chain])) {
          // every jump
        }
        await iptables(['-F', chain]);
        await iptables(['-X', chain]);
      }
    },
  };
}

/**
 * Connection marks of one pod (conntrack, on the connection, not the packet): the pod dialed it
 * (`dialed`), it was dialed to the pod's IP or answered by the pod (`answers`), it is a connection of
 * a port cut (`port`). Distinct per pod (uid) and per purpose.
 */
export function netFaultMarks(unixUid: number): { dialed: string; answers: string; port: string } {
  return { dialed: String(unixUid * 4), answers: String(unixUid * 4 + 1), port: String(unixUid * 4 + 2) };
}

/**
 * Pure: the rules (chain, rule spec) that make one fault shape for one pod, in the order they are added.
 * The one-way and port shapes mark connections by who dialed whom (conntrack's original direction)
 * and drop by direction, then drop statelessly by owner and address what can be told that way
 * (see the header: the stateless rules carry the guarantee).
 */
export function netFaultRules(chains: { INPUT: string; OUTPUT: string }, t: NetFaultTarget, shape: NetFaultShape): [string, string[]][] {
  const uid = String(t.unixUid);
  const ip = `${t.ip}/32`;
  const m = netFaultMarks(t.unixUid);
  if (shape === 'all') {
    return [
      [chains.OUTPUT, ['-m', 'owner', '--uid-owner', uid, '-j', 'DROP']],
      [chains.OUTPUT, ['-d', ip, '-j', 'DROP']],
      [chains.INPUT, ['-d', ip, '-j', 'DROP']],
    ];
  }
  if (shape === 'out' || shape === 'in') {
    // Marking first (a packet goes on through the chain after CONNMARK), then the drops by direction.
    const classify: [string, string[]][] = [
      [chains.OUTPUT, ['-m', 'conntrack', '--ctorigdst', ip, '-j', 'CONNMARK', '--set-mark', m.answers]],
      [chains.OUTPUT, ['-m', 'conntrack', '--ctdir', 'ORIGINAL', '-m', 'owner', '--uid-owner', uid, '-j', 'CONNMARK', '--set-mark', m.dialed]],
      [chains.OUTPUT, ['-m', 'conntrack', '--ctdir', 'REPLY', '-m', 'owner', '--uid-owner', uid, '-j', 'CONNMARK', '--set-mark', m.answers]],
    ];
    // The pod's own direction: ORIGINAL on what it dialed, REPLY on what was dialed to it.
    const [dialedDir, answersDir] = shape === 'out' ? ['ORIGINAL', 'REPLY'] : ['REPLY', 'ORIGINAL'];
    // Stateless rules too, for packets conntrack does not classify (a retransmission of a dropped
    // segment got through connmark-only rules in a test here).
    const stateless: [string, string[]] =
      shape === 'out' ? [chains.OUTPUT, ['-m', 'owner', '--uid-owner', uid, '-j', 'DROP']] : [chains.OUTPUT, ['-d', ip, '-m', 'owner', '!', '--uid-owner', uid, '-j', 'DROP']];
    return [
      ...classify,
      stateless,
      [chains.OUTPUT, ['-m', 'connmark', '--mark', m.dialed, '-m', 'conntrack', '--ctdir', dialedDir, '-j', 'DROP']],
      [chains.OUTPUT, ['-m', 'connmark', '--mark', m.answers, '-m', 'conntrack', '--ctdir', answersDir, '-j', 'DROP']],
    ];
  }
  const port = String(shape.port);
  if (!Number.isInteger(shape.port) || shape.port < 1 || shape.port > 65535) throw new Error(`netfault: port ${port} out of range`);
  return [
    // dialed to the pod's port by another pod (root, the harness and the kubelet, keeps /status)
    [chains.OUTPUT, ['-p', 'tcp', '-m', 'conntrack', '--ctdir', 'ORIGINAL', '--ctorigdst', ip, '--ctorigdstport', port, '-m', 'owner', '!', '--uid-owner', '0', '-j', 'CONNMARK', '--set-mark', m.port]],
    // dialed by the pod to that port anywhere
    [chains.OUTPUT, ['-p', 'tcp', '-m', 'conntrack', '--ctdir', 'ORIGINAL', '--ctorigdstport', port, '-m', 'owner', '--uid-owner', uid, '-j', 'CONNMARK', '--set-mark', m.port]],
    [chains.OUTPUT, ['-m', 'connmark', '--mark', m.port, '-j', 'DROP']],
    // stateless: what other pods send to the port, what the pod sends to it
    [chains.OUTPUT, ['-p', 'tcp', '-d', ip, '--dport', port, '-m', 'owner', '!', '--uid-owner', '0', '-j', 'DROP']],
    [chains.OUTPUT, ['-p', 'tcp', '--dport', port, '-m', 'owner', '--uid-owner', uid, '-j', 'DROP']],
  ];
}
