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
//  - 'in': only what reaches the pod is dropped. Peers dial from 127.0.0.1, not from their pod IP,
//    so "to the pod" cannot be told by address alone: every connection the pod has sent on (or that
//    has its IP as source) is connmarked with the pod's uid, and packets of such a connection sent
//    by anyone else are dropped, as are packets to its IP from other uids;
//  - { port }: only TCP to that port on the pod's IP from other pods (uid ≠ 0: the harness and the
//    kubelet, root, still reach it) and from the pod to that port anywhere: the agent mesh cut while
//    Tarantool replication and the harness's /status reads still flow.
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

/** Pure: the rules (chain, rule spec) that make one fault shape for one pod, in the order they are added. */
export function netFaultRules(chains: { INPUT: string; OUTPUT: string }, t: NetFaultTarget, shape: NetFaultShape): [string, string[]][] {
  const uid = String(t.unixUid);
  const ip = `${t.ip}/32`;
  if (shape === 'all') {
    return [
      [chains.OUTPUT, ['-m', 'owner', '--uid-owner', uid, '-j', 'DROP']],
      [chains.OUTPUT, ['-d', ip, '-j', 'DROP']],
      [chains.INPUT, ['-d', ip, '-j', 'DROP']],
    ];
  }
  if (shape === 'out') return [[chains.OUTPUT, ['-m', 'owner', '--uid-owner', uid, '-j', 'DROP']]];
  if (shape === 'in') {
    // The mark is the uid (unique per pod on a node); the marking rules come first and only mark.
    return [
      [chains.OUTPUT, ['-m', 'owner', '--uid-owner', uid, '-j', 'CONNMARK', '--set-mark', uid]],
      [chains.OUTPUT, ['-s', ip, '-j', 'CONNMARK', '--set-mark', uid]],
      [chains.OUTPUT, ['-m', 'connmark', '--mark', uid, '-m', 'owner', '!', '--uid-owner', uid, '-j', 'DROP']],
      [chains.OUTPUT, ['-d', ip, '-m', 'owner', '!', '--uid-owner', uid, '-j', 'DROP']],
    ];
  }
  const port = String(shape.port);
  if (!Number.isInteger(shape.port) || shape.port < 1 || shape.port > 65535) throw new Error(`netfault: port ${port} out of range`);
  return [
    [chains.OUTPUT, ['-p', 'tcp', '-d', ip, '--dport', port, '-m', 'owner', '!', '--uid-owner', '0', '-j', 'DROP']],
    [chains.OUTPUT, ['-p', 'tcp', '--dport', port, '-m', 'owner', '--uid-owner', uid, '-j', 'DROP']],
  ];
}
