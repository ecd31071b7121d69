import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

// Network faults for tests: cut one pod off (nothing it sends leaves, nothing sent to its IP
// arrives), heal it. Every pod process runs as the pod's own uid and binds the pod's loopback IP,
// so three iptables rules do it: OUTPUT `--uid-owner <uid>` (what the pod sends, whatever source
// address the kernel picks), OUTPUT and INPUT `-d <ip>` (what others send). DROP, not REJECT: a
// connection attempt hangs as across a real partition (verified on loopback).
// The rules live in two dedicated chains jumped to from INPUT/OUTPUT; `healAll` removes the chains
// and the jumps, leaving the tables as they were. Stateless: the state is in iptables, so any
// process (a test file, the global teardown) can cut and heal.

const run = promisify(execFile);

export interface NetFaultTarget {
  ip: string;
  unixUid: number;
}

export interface NetFault {
  cutOff(target: NetFaultTarget): Promise<void>;
  heal(target: NetFaultTarget): Promise<void>;
  isCutOff(target: NetFaultTarget): Promise<boolean>;
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

  const rules = (t: NetFaultTarget): [string, string[]][] => [
    [chains.OUTPUT, ['-m', 'owner', '--uid-owner', String(t.unixUid), '-j', 'DROP']],
    [chains.OUTPUT, ['-d', `${t.ip}/32`, '-j', 'DROP']],
    [chains.INPUT, ['-d', `${t.ip}/32`, '-j', 'DROP']],
  ];

  const ensureChains = async (): Promise<void> => {
    for (const [builtin, chain] of Object.entries(chains)) {
      if (!(await iptables(['-n', '-L', chain]))) await iptables(['-N', chain]); // a racing creator is fine
      if (!(await iptables(['-C', builtin, '-j', chain]))) await must(['-I', builtin, '1', '-j', chain]);
    }
  };

  return {
    async cutOff(t) {
      await ensureChains();
      for (const [chain, spec] of rules(t)) {
        if (!(await iptables(['-C', chain, ...spec]))) await must(['-A', chain, ...spec]);
      }
    },
    async heal(t) {
      for (const [chain, spec] of rules(t)) {
        while (await iptables(['-D', chain, ...spec])) {
          // delete every copy
        }
      }
    },
    async isCutOff(t) {
      for (const [chain, spec] of rules(t)) if (!(await iptables(['-C', chain, ...spec]))) return false;
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
