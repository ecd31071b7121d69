import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants, closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { ExitInfo } from './lifecycle.js';

// Container processes. Each runs in a private mount namespace (volumes bind-mounted at their mount
// paths), under the pod's unix uid, in its own process group (so a signal to the group reaches
// every child), with stdout and stderr appended to its log file.

export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerSpawn {
  argv: string[];
  env: Record<string, string>;
  workingDir: string;
  mounts: BindMount[];
  uid: number;
  gid: number;
  logPath: string;
  /** The pod's hostname (its own UTS namespace). */
  hostname: string;
}

export interface ContainerProcess {
  pid: number;
  /** Resolves once the process has exited (and the rest of its group has been killed). */
  exited: Promise<ExitInfo>;
  /** Sends a signal to the whole process group. */
  signal(sig: NodeJS.Signals): void;
}

/** Absolute path of a host tool (the container's PATH may not have it). */
export function hostTool(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(':')]) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`${name} not found: the process kubelet needs util-linux (unshare, setpriv, nsenter, mount)`);
}

// Runs as root inside the new mount and UTS namespaces: sets the pod's hostname, bind-mounts every
// volume, then drops to the pod's uid. Arguments: mount setpriv hostname (source target ro|rw)… --
// workingDir uid gid argv… (tools come as arguments so the container's environment stays its own).
const MOUNT_AND_EXEC = `
set -e
MOUNT=$1; SETPRIV=$2; echo "$3" > /proc/sys/kernel/hostname; shift 3
while [ "$1" != "--" ]; do
  if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")"; [ -e "$2" ] || : > "$2"; fi
  "$MOUNT" --bind "$1" "$2"
  if [ "$3" = ro ]; then "$MOUNT" -o remount,bind,ro "$2"; fi
  shift 3
done
shift
cd "$1" || { echo "shoal-kubelet: working directory $1 does not exist" >&2; exit 128; }
uid=$2; gid=$3; shift 3
exec "$SETPRIV" --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
`;

/** Deeper mount paths after the ones that contain them, so a volume inside another stays visible. */
export function orderMounts(mounts: BindMount[]): BindMount[] {
  const depth = (m: BindMount): number => path.posix.normalize(m.target).split('/').filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a) - depth(b));
}

/** The exit code a container runtime reports: the code, or 128 + signal number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? osConstants.signals[signal] : undefined;
  return 128 + (n ?? 9);
}

export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone
  }
}

export function spawnContainer(spec: ContainerSpawn): ContainerProcess {
  const mountArgs = orderMounts(spec.mounts).flatMap((m) => [m.source, m.target, m.readOnly ? 'ro' : 'rw']);
  const log = openSync(spec.logPath, 'a', 0o640);
  let child;
  try {
    child = spawn(
      hostTool('unshare'),
      [
        '--mount',
        '--uts',
        '--propagation',
        'private',
        '--',
        hostTool('sh'),
        '-c',
        MOUNT_AND_EXEC,
        'shoal-container',
        hostTool('mount'),
        hostTool('setpriv'),
        spec.hostname,
        ...mountArgs,
        '--',
        spec.workingDir || '/',
        String(spec.uid),
        String(spec.gid),
        ...spec.argv,
      ],
      {
        detached: true, // own session and process group
        cwd: '/',
        env: spec.env,
        stdio: ['ignore', log, log],
      },
    );
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  const exited = new Promise<ExitInfo>((resolve) => {
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) resolve({ exitCode: 128, message: `cannot start: ${err.message}` });
    });
    child.once('exit', (code, signal) => {
      // The container's main process is gone: like a runtime tearing down the PID namespace, kill
      // what it left behind in its group.
      if (pid !== undefined) signalGroup(pid, 'SIGKILL');
      resolve({ exitCode: exitCodeOf(code, signal), ...(spawnError ? { message: spawnError.message } : {}) });
    });
  });
  return {
    pid: pid ?? -1,
    exited,
    signal: (sig) => {
      if (pid !== undefined) signalGroup(pid, sig);
    },
  };
}

/** Pids of every process whose real uid is in [minUid, maxUid] (from /proc). */
export function pidsOfUids(minUid: number, maxUid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const zombie = /^State:\s+Z/m.test(status); // dead, only waiting to be reaped
      if (uid >= minUid && uid <= maxUid && !zombie) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** SIGKILLs every process running as a uid in the range (a pod's leftovers: daemons that left their group). */
export function killUids(minUid: number, maxUid: number): number {
  const pids = pidsOfUids(minUid, maxUid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  return pids.length;
}

export interface ExecResult {
  exitCode: number;
  /** stdout and stderr, capped at 10 kB. */
  output: string;
  timedOut: boolean;
}

export interface ContainerTarget {
  /** The container's main process: the command joins its mount and UTS namespaces. */
  pid: number;
  uid: number;
  gid: number;
  env: Record<string, string>;
  /** The container's working directory (where its main process started, wherever it went since). */
  workingDir: string;
}

/**
 * Starts a command the way the kubelet's exec reaches a container: in the mount and UTS namespaces
 * of its main process, in the container's working directory, as the pod's uid, with the
 * container's environment, in a process group of its own (signalGroup reaches all of it).
 */
export function spawnInContainer(target: ContainerTarget, argv: string[], stdio: StdioOptions): ChildProcess {
  return spawn(
    hostTool('nsenter'),
    ['-t', String(target.pid), '-m', '-u', `--wd=${target.workingDir || '/'}`, '--', hostTool('setpriv'), `--reuid=${target.uid}`, `--regid=${target.gid}`, '--clear-groups', '--', ...argv],
    { detached: true, env: target.env, stdio },
  );
}

/** Runs a command in a container (exec probes and hooks), collecting its output. Killed (whole group) after `timeoutMs`. */
export function execInContainer(target: ContainerTarget, argv: string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawnInContainer(target, argv, ['ignore', 'pipe', 'pipe']);
    let output = '';
    const collect = (b: Buffer): void => {
      if (output.length < 10_000) output += b.toString('utf8').slice(0, 10_000 - output.length);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ exitCode: 128, output: err.message, timedOut });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      resolve({ exitCode: exitCodeOf(code, sig), output, timedOut });
    });
  });
}
