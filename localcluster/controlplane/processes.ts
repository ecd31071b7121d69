import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ShoalError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { onPath } from './binaries.js';
import type { ComponentName } from './types.js';

// One control-plane process: started with its log file and pid file, stopped with a grace, and
// never outliving this Node process.

// Children still alive when this Node process exits are killed (SIGKILL is all `exit` allows).
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

// setpriv --pdeathsig makes the kernel kill a child when this process dies without running
// its exit hook (SIGKILL, crash), so no etcd or API server outlives a killed test.
const SETPRIV = onPath('setpriv');

export class ManagedProcess {
  private child: ChildProcess | null = null;
  private exitPromise: Promise<void> = Promise.resolve();
  private startedAt = 0;
  /** Called on every exit not requested through stop(). */
  onUnexpectedExit: ((code: number | null, signal: NodeJS.Signals | null, uptimeMs: number) => void) | null = null;
  private stopping = false;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly name: ComponentName,
    private readonly bin: string,
    private readonly args: string[],
    readonly logFile: string,
    private readonly pidFile: string,
    private readonly log: Logger,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  start(): void {
    if (this.child) return;
    installExitHook();
    const fd = openSync(this.logFile, 'a');
    writeSync(fd, `\n=== ${new Date().toISOString()} starting ${this.bin} ${this.args.join(' ')}\n`);
    const [cmd, argv] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', this.bin, ...this.args]]
      : [this.bin, this.args];
    let child: ChildProcess;
    try {
      child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], env: { ...process.env } });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.stopping = false;
    this.lastExit = null;
    this.startedAt = Date.now();
    liveChildren.add(child);
    this.exitPromise = new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        this.child = null;
        this.lastExit = { code, signal };
        rmSync(this.pidFile, { force: true });
        const requested = this.stopping;
        if (!requested) {
          this.log.warn({ process: this.name, code, signal, logFile: this.logFile }, `${this.name} exited`);
        }
        resolveExit();
        if (!requested) this.onUnexpectedExit?.(code, signal, Date.now() - this.startedAt);
      });
    });
    child.once('error', (err) => {
      this.log.error({ process: this.name, err: errorMessage(err) }, `${this.name} could not be started`);
    });
    // Written synchronously so the exit handler's removal always comes after it.
    if (child.pid !== undefined) writeFileSync(this.pidFile, `${child.pid}\n`);
    this.log.info({ process: this.name, pid: child.pid, logFile: this.logFile }, `started ${this.name}`);
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  async stop(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.stopping = true;
    const exited = this.exitPromise;
    child.kill('SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs, true, { ref: false })]);
    if (timedOut) {
      this.log.warn({ process: this.name, graceMs }, `${this.name} ignored SIGTERM; sending SIGKILL`);
      child.kill('SIGKILL');
      const stuck = await Promise.race([exited.then(() => false), sleep(10_000, true, { ref: false })]);
      if (stuck) throw new ShoalError(`${this.name} (pid ${child.pid}) did not exit after SIGKILL`);
    }
    this.log.info({ process: this.name }, `stopped ${this.name}`);
  }
}

/** Kills processes a previous, crashed run left behind in this run directory (by pid file). */
export async function reapStale(pidDir: string, runDir: string, log: Logger): Promise<void> {
  let files: string[];
  try {
    files = await readdir(pidDir);
  } catch {
    return;
  }
  for (const file of files.filter((f) => f.endsWith('.pid'))) {
    const pid = Number((await readFile(join(pidDir, file), 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 1) continue;
    let cmdline = '';
    try {
      cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
    } catch {
      // not running
    }
    // Only a process whose command line names this run directory is ours.
    if (cmdline.includes(runDir)) {
      log.warn({ pid, file }, 'killing a process left behind by an earlier run');
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      for (let i = 0; i < 40 && existsSync(`/proc/${pid}`); i++) await sleep(50);
    }
    await rm(join(pidDir, file), { force: true });
  }
}
