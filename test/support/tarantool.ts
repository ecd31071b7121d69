// Spawns real Tarantool processes for integration tests, each like a pod: its own temp directory
// with a run dir (shoal.lua + console socket), a work dir (data), a log file and an iproto port.
// A TarantoolFleet owns everything it starts; cleanup() kills every process and removes every
// directory, so a test leaves nothing behind even when it fails half-way.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleClient, type ConsoleClientOptions } from '../../agent/console/client.js';
import { installShoalLua, luaPathFor } from '../../agent/lua/module.js';
import { identityOf } from '../../agent/instance/identity.js';
import { LocalInstance } from '../../agent/instance/local.js';
import type { ReplicationCredentials } from '../../agent/instance/uri.js';
import { createLogger } from '../../common/log.js';
import { defaultLane, tarantoolBinary, vshardLuaPath, type TarantoolLane } from '../../demo/tarantool-binaries.js';

export interface TarantoolStartOptions {
  /** Lua run after require('shoal').cfg{…} returns (the application's own code). */
  afterCfg?: string;
  /** Extra fields for the application's box options, as Lua source (e.g. "wal_dir = 'wal'"). */
  appOptions?: string;
  /** Subdirectories of the work dir to create (for memtx_dir / wal_dir in appOptions). */
  subdirs?: string[];
  /** Which Tarantool: '3' (the 3.8 build, default unless SHOAL_TARANTOOL_LANE says otherwise) or '2.6' (Debian's). */
  lane?: TarantoolLane;
  /**
   * The 3.x native style (SPEC §4a) instead of init.lua: the user's YAML config (data directories
   * and memory are added unless it sets them) and, optionally, the application file it runs.
   */
  native?: { config?: string; app?: string };
  /** Its replica set (the StatefulSet it would belong to); default TEST_REPLICASET. */
  replicaset?: string;
}

/** What tests use as the cluster coordinates of their instances. */
export const TEST_NAMESPACE = 'it';
export const TEST_CLUSTER = 'test';
export const TEST_REPLICASET = 'storage';
export const TEST_CREDENTIALS: ReplicationCredentials = { user: 'shoal_replicator', password: 'a1b2c3d4e5f6' };

/** A test Tarantool with the agent's view of it: its LocalInstance and the console both share. */
export interface Node {
  t: TarantoolInstance;
  inst: LocalInstance;
  console: ConsoleClient;
  /** Runs Lua on the instance (test data traffic and assertions). */
  lua(code: string, ...args: Array<null | boolean | number | string>): Promise<unknown>;
}

export class TarantoolInstance {
  process: ChildProcess | undefined;
  exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
    private readonly opts: TarantoolStartOptions,
  ) {}

  get runDir(): string {
    return join(this.dir, 'run');
  }
  get workDir(): string {
    return join(this.dir, 'data');
  }
  get consoleSocket(): string {
    return join(this.runDir, 'console.sock');
  }
  get logPath(): string {
    return join(this.dir, 'tarantool.log');
  }
  /** host:port peers connect to. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
  get pid(): number | undefined {
    return this.running ? this.process?.pid : undefined;
  }
  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Writes init.lua and shoal.lua (as the agent would) and starts the process. */
  async spawn(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    await mkdir(this.workDir, { recursive: true });
    for (const sub of this.opts.subdirs ?? []) await mkdir(join(this.workDir, sub), { recursive: true });
    await installShoalLua(this.runDir);
    if (this.opts.native) return this.spawnNative(this.opts.native);
    const init = join(this.dir, 'init.lua');
    const appOptions = [`memtx_memory = 64 * 1024 * 1024`, `work_dir = ${JSON.stringify(this.workDir)}`];
    if (this.opts.appOptions) appOptions.push(this.opts.appOptions);
    await writeFile(init, `require('shoal').cfg({${appOptions.join(', ')}})\n${this.opts.afterCfg ?? ''}\n`);
    await this.start([init], {});
  }

  /** The user's config file of the native style (what SHOAL_USER_CONFIG names). */
  get userConfigPath(): string {
    return join(this.dir, 'user-config.yaml');
  }

  /** As the webhook sets the container up: TT_PRELOAD, TT_CONFIG in the run dir, TT_INSTANCE_NAME. */
  private async spawnNative(n: { config?: string; app?: string }): Promise<void> {
    const lines = [n.config ?? ''];
    if (!/^snapshot:/m.test(lines[0] ?? '')) lines.push(`snapshot:\n  dir: ${JSON.stringify(this.workDir)}`);
    if (!/^wal:/m.test(lines[0] ?? '')) lines.push(`wal:\n  dir: ${JSON.stringify(this.workDir)}`);
    if (!/^memtx:/m.test(lines[0] ?? '')) lines.push('memtx:\n  memory: 67108864');
    if (n.app !== undefined) {
      const app = join(this.dir, 'app.lua');
      await writeFile(app, n.app);
      lines.push(`app:\n  file: ${JSON.stringify(app)}`);
    }
    await writeFile(this.userConfigPath, lines.join('\n') + '\n');
    await this.start([], {
      TT_PRELOAD: join(this.runDir, 'preload.lua'),
      TT_CONFIG: join(this.runDir, 'config.yaml'),
      TT_INSTANCE_NAME: this.name,
      SHOAL_USER_CONFIG: this.userConfigPath,
      SHOAL_CLUSTER: TEST_CLUSTER,
      SHOAL_REPLICASET: this.opts.replicaset ?? TEST_REPLICASET,
    });
  }

  private async start(args: string[], env: Record<string, string>): Promise<void> {
    const log = await open(this.logPath, 'a');
    try {
      const lane = this.opts.lane ?? defaultLane();
      // The 3 lane finds vshard as the local Tarantool 3 image does (demo/images.ts).
      const luaPath = lane === '3' ? `${luaPathFor(this.runDir).replace(/;;$/, '')};${vshardLuaPath()};;` : luaPathFor(this.runDir);
      const child = spawn(tarantoolBinary(lane), args, {
        cwd: this.dir,
        env: { ...process.env, LUA_PATH: luaPath, SHOAL_CONSOLE_SOCKET: this.consoleSocket, ...env },
        stdio: ['ignore', log.fd, log.fd],
      });
      this.process = child;
      this.exited = new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.once('error', () => resolve(null));
      });
    } finally {
      await log.close();
    }
  }

  /** Sends `signal` (SIGKILL by default) and waits (bounded) until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.process?.kill(signal);
    await waitBounded(this.exited, 10_000, `${this.name} did not exit after ${signal}`);
  }
}

export class TarantoolFleet {
  // A promise, not a string: nodes are created concurrently and must share one root.
  private root: Promise<string> | undefined;
  private readonly instances: TarantoolInstance[] = [];
  private readonly clients: ConsoleClient[] = [];

  /** Creates (but does not start) an instance with its own directory and a free port. */
  async create(name: string, opts: TarantoolStartOptions = {}): Promise<TarantoolInstance> {
    // Short root: Unix socket paths are limited to 107 bytes.
    this.root ??= mkdtemp(join(tmpdir(), 'shoal-it-'));
    const dir = join(await this.root, name);
    await mkdir(dir, { recursive: true });
    const inst = new TarantoolInstance(name, dir, await freePort(), opts);
    this.instances.push(inst);
    return inst;
  }

  async start(name: string, opts: TarantoolStartOptions = {}): Promise<TarantoolInstance> {
    const inst = await this.create(name, opts);
    await inst.spawn();
    return inst;
  }

  /** A console client for `inst`, closed by cleanup(). */
  client(inst: TarantoolInstance, opts: Partial<ConsoleClientOptions> = {}): ConsoleClient {
    const c = new ConsoleClient({ socketPath: inst.consoleSocket, logPath: inst.logPath, ...opts });
    this.clients.push(c);
    return c;
  }

  /**
   * Starts Tarantool for pod `pod` and the LocalInstance an agent would have for it (identity
   * derived from TEST_NAMESPACE/TEST_CLUSTER/pod, listening on 127.0.0.1:<free port>).
   */
  async node(pod: string, opts: TarantoolStartOptions = {}): Promise<Node> {
    const t = await this.start(pod, opts);
    const console = this.client(t, { timeoutMs: 20_000 });
    const identity = identityOf({
      namespace: TEST_NAMESPACE,
      cluster: TEST_CLUSTER,
      pod,
      replicaset: opts.replicaset ?? TEST_REPLICASET,
      bindHost: '127.0.0.1',
      podIp: '127.0.0.1',
      listenPort: t.port,
    });
    const logger = createLogger({ component: 'test', cluster: TEST_CLUSTER, pod });
    const inst = new LocalInstance({ console, identity, credentials: TEST_CREDENTIALS, logger, callTimeoutMs: 20_000 });
    await inst.waitForConsole({ timeoutMs: 60_000 });
    return { t, inst, console, lua: (code, ...args) => console.eval(code, args, { timeoutMs: 20_000 }) };
  }

  /** Kills every process, closes every client and removes the temp root. */
  async cleanup(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
    await Promise.all(this.instances.splice(0).map((i) => i.kill('SIGKILL').catch(() => undefined)));
    const root = this.root;
    this.root = undefined;
    if (root) await rm(await root, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitBounded<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value other than undefined, bounded by `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
