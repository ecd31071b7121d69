// A real Kubernetes v1.20.2 control plane on 127.0.0.1: etcd + kube-apiserver +
// kube-controller-manager + kube-scheduler as child processes, with a PKI made by openssl.
// Facts behind the flags: docs/KUBERNETES.md. Binaries: scripts/provision-kubernetes.sh.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { mkdir, readFile, writeFile, rm, readdir, chmod } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { KubeConfig, RbacAuthorizationV1Api, type V1ClusterRole, type V1ClusterRoleBinding } from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';
import { ShoalError, errorMessage } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/log.js';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

export const KUBERNETES_VERSION = 'v1.20.2';
/** The user (certificate CN) the API server is as a client of kubelets (logs, exec, port-forward), as kubeadm names it. */
export const APISERVER_KUBELET_CLIENT = 'kube-apiserver-kubelet-client';
const PROVISION_HINT = 'run scripts/provision-kubernetes.sh (it builds them once, ~5 min)';

/** Where scripts/provision-kubernetes.sh puts the binaries. */
export function defaultKubernetesBinDir(): string {
  const cache = process.env.SHOAL_CACHE_DIR || join(homedir(), '.cache', 'shoal');
  return join(cache, `kubernetes-${KUBERNETES_VERSION}`, 'bin');
}

/** Debian's kubectl of the control plane's version (kubernetes-client), unpacked by scripts/provision-kubernetes.sh whatever kubectl is on PATH. */
export function debianKubectlPath(): string {
  const cache = process.env.SHOAL_CACHE_DIR || join(homedir(), '.cache', 'shoal');
  return join(cache, `kubectl-${KUBERNETES_VERSION}`, 'usr', 'bin', 'kubectl');
}

export interface KubernetesBinaries {
  etcd: string;
  kubeApiServer: string;
  kubeControllerManager: string;
  kubeScheduler: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Finds the control-plane binaries (etcd from PATH) or throws a ShoalError that says how to get them. */
export function locateKubernetesBinaries(binDir: string = defaultKubernetesBinDir()): KubernetesBinaries {
  const inBin = (name: string): string => {
    const path = join(binDir, name);
    if (!isExecutable(path)) {
      throw new ShoalError(`Kubernetes ${KUBERNETES_VERSION} binary ${name} not found at ${path}`, PROVISION_HINT);
    }
    return path;
  };
  const etcd = onPath('etcd') ?? (isExecutable('/usr/bin/etcd') ? '/usr/bin/etcd' : undefined);
  if (!etcd) throw new ShoalError('etcd not found on PATH', 'run scripts/provision-kubernetes.sh (installs Debian etcd-server)');
  return {
    etcd,
    kubeApiServer: inBin('kube-apiserver'),
    kubeControllerManager: inBin('kube-controller-manager'),
    kubeScheduler: inBin('kube-scheduler'),
  };
}

export interface ControlPlanePorts {
  etcdClient: number;
  etcdPeer: number;
  apiServer: number;
  controllerManager: number;
  scheduler: number;
}

export interface ControlPlaneOptions {
  /** Everything (PKI, etcd data, logs, kubeconfigs, pid files) lives here. Reusing it keeps PKI and etcd data. */
  runDir: string;
  /** Fixed ports; any left out is picked free so several control planes can run side by side. */
  ports?: Partial<ControlPlanePorts>;
  /** Directory with kube-apiserver, kube-controller-manager, kube-scheduler; default defaultKubernetesBinDir(). */
  binDir?: string;
  logger?: Logger;
  /** Bound on each startup wait (etcd healthy, API server ready, controllers healthy). Default 90 s. */
  startTimeoutMs?: number;
  /** Bound on SIGTERM before SIGKILL when stopping a process. Default 15 s. */
  stopGraceMs?: number;
  /** Aborts startup (everything started so far is stopped). */
  signal?: AbortSignal;
}

export interface ServiceAccountInfo {
  /** Private key the API server signs tokens with and the controller-manager signs legacy tokens with. */
  keyPath: string;
  publicKeyPath: string;
  issuer: string;
}

export interface ControlPlane {
  readonly runDir: string;
  readonly logDir: string;
  /** https://127.0.0.1:<port> */
  readonly apiServerUrl: string;
  readonly etcdUrl: string;
  readonly ports: Readonly<ControlPlanePorts>;
  /** Admin kubeconfig (O=system:masters), usable by kubectl. */
  readonly adminKubeconfigPath: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  /** The API server's serving certificate and key (CA-signed, IP SAN 127.0.0.1): a proxy in front of it can present them. */
  readonly servingCertPath: string;
  readonly servingKeyPath: string;
  readonly serviceAccount: ServiceAccountInfo;
  /** Log file of each process: etcd, kube-apiserver, kube-controller-manager, kube-scheduler. */
  readonly logFiles: Readonly<Record<ComponentName, string>>;
  /** The CN of the API server's client certificate for kubelets (what a kubelet lets in). */
  readonly kubeletClientUser: string;
  /** Kubeconfig for a node: CN system:node:<nodeName>, O system:nodes (Node + RBAC authorization). */
  kubeletKubeconfig(nodeName: string): Promise<string>;
  /** Kubeconfig with a client certificate for any user and groups (e.g. for RBAC tests). */
  userKubeconfig(name: string, user: string, groups?: string[]): Promise<string>;
  /** Pids of the processes running now. */
  pids(): Partial<Record<ComponentName, number>>;
  /** Stops the API server only (SIGTERM, SIGKILL after the grace). etcd keeps running. */
  stopApiServer(): Promise<void>;
  /** Starts the API server again, waits for /readyz, and brings back the controllers if they exited. */
  startApiServer(): Promise<void>;
  /** Stops every process this control plane started; idempotent. */
  stop(): Promise<void>;
}

export type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler';

// ---------------------------------------------------------------------------------------------
// Processes

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

function tailOf(path: string, lines = 15): string {
  try {
    const text = readFileSync(path, 'utf8');
    // Only the latest run: the log file is appended to across restarts.
    const run = text.slice(Math.max(0, text.lastIndexOf('\n=== ')));
    return run.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(log file unreadable)';
  }
}

class ManagedProcess {
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

// ---------------------------------------------------------------------------------------------
// Bounded waits and HTTP probes

interface ProbeResult {
  status: number;
  body: string;
}

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
}

function probe(url: string, tls: TlsMaterial = {}): Promise<ProbeResult> {
  return new Promise((resolveProbe, reject) => {
    const isHttps = url.startsWith('https:');
    const options = isHttps
      ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: 3000 }
      : { timeout: 3000 };
    const req = (isHttps ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolveProbe({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout probing ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `ready` until it returns true; fails early when the process exits, and names its log. */
async function waitUntil(
  what: string,
  proc: ManagedProcess,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    signal?.throwIfAborted();
    if (!proc.running) {
      const exit = proc.lastExit;
      throw new ShoalError(
        `${proc.name} exited (code ${exit?.code ?? '?'}, signal ${exit?.signal ?? 'none'}) while waiting for ${what}; ` +
          `last lines of ${proc.logFile}:\n${tailOf(proc.logFile)}`,
        `read ${proc.logFile}`,
      );
    }
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = errorMessage(err);
    }
    if (Date.now() > deadline) {
      throw new ShoalError(
        `${what} not reached within ${Math.round(timeoutMs / 1000)} s${lastError ? ` (last error: ${lastError})` : ''}`,
        `read ${proc.logFile}`,
      );
    }
    await sleep(250, undefined, signal ? { signal } : {});
  }
}

/** Free loopback ports, all held open at once so they are distinct. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<ReturnType<typeof createServer>>((resolveServer, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolveServer(server));
      });
    }),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

// ---------------------------------------------------------------------------------------------
// PKI (openssl for certificates, node:crypto for keys)

interface CertSpec {
  cn: string;
  o?: string[];
  usage: 'server' | 'client' | 'both';
  dns?: string[];
  ips?: string[];
}

async function ecKey(path: string): Promise<void> {
  const { privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  await writeFile(path, privateKey, { mode: 0o600 });
}

function dnSection(cn: string, o: string[] = []): string {
  // Numbered O entries give a subject with several organizations (= several groups).
  return ['[dn]', ...o.map((org, i) => `${i}.O = ${org}`), `CN = ${cn}`].join('\n');
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new ShoalError(`openssl ${args[0]} failed: ${errorMessage(err)} ${stderr}`, 'apt-get install openssl');
  }
}

class Pki {
  constructor(readonly dir: string) {}

  path(name: string, ext: 'crt' | 'key' | 'pub'): string {
    return join(this.dir, `${name}.${ext}`);
  }

  has(name: string): boolean {
    return existsSync(this.path(name, 'crt')) && existsSync(this.path(name, 'key'));
  }

  async ca(name: string, cn: string): Promise<void> {
    if (this.has(name)) return;
    await ecKey(this.path(name, 'key'));
    const cfg = join(this.dir, `${name}.cnf`);
    await writeFile(
      cfg,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        dnSection(cn),
        '[ext]',
        'basicConstraints = critical,CA:TRUE',
        'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
        'subjectKeyIdentifier = hash',
        '',
      ].join('\n'),
    );
    await openssl([
      'req', '-x509', '-new', '-config', cfg, '-extensions', 'ext', '-key', this.path(name, 'key'),
      '-sha256', '-days', '3650', '-set_serial', serial(), '-out', this.path(name, 'crt'),
    ]);
    await rm(cfg, { force: true });
  }

  async leaf(name: string, caName: string, spec: CertSpec): Promise<void> {
    if (this.has(name)) return;
    await ecKey(this.path(name, 'key'));
    const cfg = join(this.dir, `${name}.cnf`);
    const csr = join(this.dir, `${name}.csr`);
    const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[spec.usage];
    const sans = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ips ?? []).map((ip) => `IP:${ip}`)];
    await writeFile(
      cfg,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        dnSection(spec.cn, spec.o),
        '[ext]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage = ${eku}`,
        'authorityKeyIdentifier = keyid',
        ...(sans.length ? [`subjectAltName = ${sans.join(',')}`] : []),
        '',
      ].join('\n'),
    );
    await openssl(['req', '-new', '-config', cfg, '-key', this.path(name, 'key'), '-out', csr]);
    await openssl([
      'x509', '-req', '-in', csr, '-CA', this.path(caName, 'crt'), '-CAkey', this.path(caName, 'key'),
      '-set_serial', serial(), '-sha256', '-days', '3650', '-extfile', cfg, '-extensions', 'ext',
      '-out', this.path(name, 'crt'),
    ]);
    await rm(cfg, { force: true });
    await rm(csr, { force: true });
  }

  async rsaKeyPair(name: string): Promise<void> {
    if (existsSync(this.path(name, 'key')) && existsSync(this.path(name, 'pub'))) return;
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await writeFile(this.path(name, 'key'), privateKey, { mode: 0o600 });
    await writeFile(this.path(name, 'pub'), publicKey);
  }
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return `0x${bytes.toString('hex')}`;
}

async function writeKubeconfig(
  path: string,
  server: string,
  caPath: string,
  user: string,
  certPath: string,
  keyPath: string,
): Promise<void> {
  const b64 = async (p: string): Promise<string> => (await readFile(p)).toString('base64');
  // Certificates embedded so the file stands alone (copied, or given to kubectl).
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'shoal-local', cluster: { server, 'certificate-authority-data': await b64(caPath) } }],
    users: [
      { name: user, user: { 'client-certificate-data': await b64(certPath), 'client-key-data': await b64(keyPath) } },
    ],
    contexts: [{ name: 'shoal-local', context: { cluster: 'shoal-local', user } }],
    'current-context': 'shoal-local',
  };
  await writeFile(path, toYaml(config), { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------
// RBAC for nodes beyond what the Node authorizer grants

const NODE_EXTRA_ROLE = 'shoal:node-extra';

// The Node authorizer (+ NodeRestriction admission) covers a kubelet's own Node, its Lease,
// its pods' status and deletion, events, and the secrets/configmaps/PVCs/PVs its pods
// reference. It does not cover the local volume provisioner the process kubelet runs: creating
// and deleting PersistentVolumes, watching PVCs and reading StorageClasses. That is granted to
// the group system:nodes here.
const nodeExtraRole: V1ClusterRole = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: NODE_EXTRA_ROLE, labels: { 'app.kubernetes.io/managed-by': 'shoal' } },
  rules: [
    { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
    { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
    { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'update', 'patch'] },
  ],
};

const nodeExtraBinding: V1ClusterRoleBinding = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name: NODE_EXTRA_ROLE, labels: { 'app.kubernetes.io/managed-by': 'shoal' } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NODE_EXTRA_ROLE },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' }],
};

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

async function applyNodeRbac(kubeconfigPath: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  try {
    await rbac.createClusterRole({ body: nodeExtraRole });
  } catch (err) {
    if (httpCode(err) !== 409) throw err;
    await rbac.replaceClusterRole({ name: NODE_EXTRA_ROLE, body: nodeExtraRole });
  }
  try {
    await rbac.createClusterRoleBinding({ body: nodeExtraBinding });
  } catch (err) {
    if (httpCode(err) !== 409) throw err;
    await rbac.replaceClusterRoleBinding({ name: NODE_EXTRA_ROLE, body: nodeExtraBinding });
  }
}

// ---------------------------------------------------------------------------------------------

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kills processes a previous, crashed run left behind in this run directory (by pid file). */
async function reapStale(pidDir: string, runDir: string, log: Logger): Promise<void> {
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

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.logger ?? createLogger({ component: 'controlplane' });
  const bins = locateKubernetesBinaries(opts.binDir);
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const stopGraceMs = opts.stopGraceMs ?? 15_000;
  const signal = opts.signal;
  const t0 = Date.now();

  const runDir = resolve(opts.runDir);
  const dirs = {
    pki: join(runDir, 'pki'),
    nodePki: join(runDir, 'pki', 'users'),
    kubeconfig: join(runDir, 'kubeconfig'),
    logs: join(runDir, 'logs'),
    pids: join(runDir, 'pids'),
    etcd: join(runDir, 'etcd'),
    cmCerts: join(runDir, 'controller-manager', 'certs'),
    flexVolume: join(runDir, 'controller-manager', 'flexvolume'),
    schedCerts: join(runDir, 'scheduler', 'certs'),
  };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  await chmod(dirs.etcd, 0o700); // etcd refuses a data dir others can read
  await reapStale(dirs.pids, runDir, log);

  // --- PKI ---
  const pki = new Pki(dirs.pki);
  if (!pki.has('ca')) {
    // A new cluster CA invalidates every certificate signed by an old one.
    await rm(dirs.pki, { recursive: true, force: true });
    await mkdir(dirs.nodePki, { recursive: true });
  }
  await pki.ca('ca', 'shoal-local-ca');
  await pki.ca('front-proxy-ca', 'shoal-local-front-proxy-ca');
  await pki.leaf('apiserver', 'ca', {
    cn: 'kube-apiserver',
    usage: 'server',
    ips: ['127.0.0.1', '10.96.0.1'],
    dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
  });
  await pki.leaf('front-proxy-client', 'front-proxy-ca', { cn: 'front-proxy-client', usage: 'client' });
  await pki.leaf('apiserver-kubelet-client', 'ca', { cn: APISERVER_KUBELET_CLIENT, o: ['system:masters'], usage: 'client' });
  await pki.leaf('admin', 'ca', { cn: 'shoal-admin', o: ['system:masters'], usage: 'client' });
  await pki.leaf('controller-manager', 'ca', { cn: 'system:kube-controller-manager', usage: 'client' });
  await pki.leaf('scheduler', 'ca', { cn: 'system:kube-scheduler', usage: 'client' });
  await pki.rsaKeyPair('sa');
  const caCertPath = pki.path('ca', 'crt');
  const caKeyPath = pki.path('ca', 'key');

  const serviceAccount: ServiceAccountInfo = {
    keyPath: pki.path('sa', 'key'),
    publicKeyPath: pki.path('sa', 'pub'),
    issuer: 'https://kubernetes.default.svc.cluster.local',
  };

  const adminTls: TlsMaterial = {
    ca: await readFile(caCertPath, 'utf8'),
    cert: await readFile(pki.path('admin', 'crt'), 'utf8'),
    key: await readFile(pki.path('admin', 'key'), 'utf8'),
  };

  const kubeconfigPath = (name: string): string => join(dirs.kubeconfig, `${name}.kubeconfig`);
  const adminKubeconfigPath = kubeconfigPath('admin');

  // Starts the processes on the given ports; everything before is port independent.
  const launch = async (ports: ControlPlanePorts): Promise<ControlPlane> => {
    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const apiServerUrl = `https://127.0.0.1:${ports.apiServer}`;

    // Kubeconfigs are rewritten on every start: the API server port may have changed.
    await writeKubeconfig(adminKubeconfigPath, apiServerUrl, caCertPath, 'shoal-admin', pki.path('admin', 'crt'), pki.path('admin', 'key'));
    await writeKubeconfig(
      kubeconfigPath('controller-manager'), apiServerUrl, caCertPath, 'system:kube-controller-manager',
      pki.path('controller-manager', 'crt'), pki.path('controller-manager', 'key'),
    );
    await writeKubeconfig(
      kubeconfigPath('scheduler'), apiServerUrl, caCertPath, 'system:kube-scheduler',
      pki.path('scheduler', 'crt'), pki.path('scheduler', 'key'),
    );

    // --- processes ---
    const logFiles: Record<ComponentName, string> = {
      etcd: join(dirs.logs, 'etcd.log'),
      'kube-apiserver': join(dirs.logs, 'kube-apiserver.log'),
      'kube-controller-manager': join(dirs.logs, 'kube-controller-manager.log'),
      'kube-scheduler': join(dirs.logs, 'kube-scheduler.log'),
    };
    const mk = (name: ComponentName, bin: string, args: string[]): ManagedProcess =>
      new ManagedProcess(name, bin, args, logFiles[name], join(dirs.pids, `${name}.pid`), log);

    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    const etcd = mk('etcd', bins.etcd, [
      '--name=shoal',
      `--data-dir=${dirs.etcd}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=shoal=${peerUrl}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-outputs=stderr',
    ]);

    const apiServer = mk('kube-apiserver', bins.kubeApiServer, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${ports.apiServer}`,
      '--insecure-port=0',
      `--tls-cert-file=${pki.path('apiserver', 'crt')}`,
      `--tls-private-key-file=${pki.path('apiserver', 'key')}`,
      `--client-ca-file=${caCertPath}`,
      `--service-account-key-file=${serviceAccount.publicKeyPath}`,
      `--service-account-signing-key-file=${serviceAccount.keyPath}`,
      `--service-account-issuer=${serviceAccount.issuer}`,
      `--api-audiences=${serviceAccount.issuer}`,
      '--service-cluster-ip-range=10.96.0.0/12',
      // Node: kubelets (system:node:<name>) get exactly their own node's rights; RBAC for the rest.
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,DefaultStorageClass,' +
        'DefaultTolerationSeconds,StorageObjectInUseProtection,PersistentVolumeClaimResize,Priority,' +
        'MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota',
      // A 127.0.0.1 endpoint for the `kubernetes` Service fails validation.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      `--requestheader-client-ca-file=${pki.path('front-proxy-ca', 'crt')}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki.path('front-proxy-client', 'crt')}`,
      `--proxy-client-key-file=${pki.path('front-proxy-client', 'key')}`,
      // What it shows kubelets (which let only this user in) for logs, exec and port-forward.
      `--kubelet-client-certificate=${pki.path('apiserver-kubelet-client', 'crt')}`,
      `--kubelet-client-key=${pki.path('apiserver-kubelet-client', 'key')}`,
    ]);

    const cmKubeconfig = kubeconfigPath('controller-manager');
    const controllerManager = mk('kube-controller-manager', bins.kubeControllerManager, [
      `--kubeconfig=${cmKubeconfig}`,
      `--authentication-kubeconfig=${cmKubeconfig}`,
      `--authorization-kubeconfig=${cmKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.controllerManager}`,
      '--port=0',
      `--cert-dir=${dirs.cmCerts}`,
      // Default is /usr/libexec/kubernetes/…, which it would create.
      `--flex-volume-plugin-dir=${dirs.flexVolume}`,
      `--client-ca-file=${caCertPath}`,
      `--requestheader-client-ca-file=${pki.path('front-proxy-ca', 'crt')}`,
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${serviceAccount.keyPath}`,
      `--root-ca-file=${caCertPath}`,
      `--cluster-signing-cert-file=${caCertPath}`,
      `--cluster-signing-key-file=${caKeyPath}`,
      '--leader-elect=true',
    ]);

    const schedKubeconfig = kubeconfigPath('scheduler');
    const scheduler = mk('kube-scheduler', bins.kubeScheduler, [
      `--kubeconfig=${schedKubeconfig}`,
      `--authentication-kubeconfig=${schedKubeconfig}`,
      `--authorization-kubeconfig=${schedKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.scheduler}`,
      '--port=0',
      `--cert-dir=${dirs.schedCerts}`,
      '--leader-elect=true',
    ]);

    const all = [scheduler, controllerManager, apiServer, etcd];
    const controllers = [controllerManager, scheduler];
    const portOf = new Map<ManagedProcess, number>([
      [controllerManager, ports.controllerManager],
      [scheduler, ports.scheduler],
    ]);

    let stopping = false;
    let apiServerDown = false; // stopped on purpose through stopApiServer()
    const restartTimers = new Map<ManagedProcess, NodeJS.Timeout>();
    const backoffMs = new Map<ManagedProcess, number>();

    const apiReady = async (): Promise<boolean> => {
      const r = await probe(`${apiServerUrl}/readyz`, adminTls);
      return r.status === 200;
    };
    const waitApiServer = (): Promise<void> =>
      waitUntil(`kube-apiserver /readyz at ${apiServerUrl}`, apiServer, apiReady, startTimeoutMs, signal);
    const waitHealthy = (p: ManagedProcess): Promise<void> =>
      waitUntil(
        `${p.name} /healthz`,
        p,
        async () => (await probe(`https://127.0.0.1:${portOf.get(p)}/healthz`, { insecure: true })).status === 200,
        startTimeoutMs,
        signal,
      );

    // Supervisor: the controller-manager and the scheduler exit when they lose their leader
    // lease (API server unreachable > ~10 s); start them again, with backoff if they crash-loop.
    // While the API server is down on purpose, restarts wait for startApiServer().
    const scheduleRestart = (p: ManagedProcess, uptimeMs: number): void => {
      if (stopping || apiServerDown || restartTimers.has(p)) return;
      const previous = backoffMs.get(p) ?? 0;
      const delay = uptimeMs > 60_000 ? 1000 : Math.min(Math.max(previous * 2, 1000), 10_000);
      backoffMs.set(p, delay);
      log.info({ process: p.name, delayMs: delay }, `restarting ${p.name}`);
      const timer = setTimeout(() => {
        restartTimers.delete(p);
        if (stopping || apiServerDown || p.running) return;
        try {
          p.start();
        } catch (err) {
          log.error({ process: p.name, err: errorMessage(err) }, `restart of ${p.name} failed`);
          scheduleRestart(p, 0);
        }
      }, delay);
      timer.unref();
      restartTimers.set(p, timer);
    };
    for (const p of controllers) p.onUnexpectedExit = (_code, _signal, uptimeMs) => scheduleRestart(p, uptimeMs);
    for (const p of [etcd, apiServer]) {
      p.onUnexpectedExit = () => {
        if (!stopping) log.error({ process: p.name, logFile: p.logFile }, `${p.name} died; it is not restarted automatically`);
      };
    }

    let stopPromise: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopPromise ??= (async () => {
        stopping = true;
        for (const t of restartTimers.values()) clearTimeout(t);
        restartTimers.clear();
        const t = Date.now();
        // Controllers first (they would otherwise log API errors), then the API server, then etcd.
        const results = await Promise.allSettled(controllers.map((p) => p.stop(stopGraceMs)));
        results.push(...(await Promise.allSettled([apiServer.stop(stopGraceMs)])));
        results.push(...(await Promise.allSettled([etcd.stop(stopGraceMs)])));
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        const left = all.filter((p) => p.running).map((p) => `${p.name} (pid ${p.pid})`);
        if (failed.length || left.length) {
          throw new ShoalError(
            `control plane did not stop cleanly: ${[...failed.map((f) => errorMessage(f.reason)), ...left].join('; ')}`,
          );
        }
        log.info({ ms: Date.now() - t }, 'control plane stopped');
      })();
      return stopPromise;
    };

    try {
      etcd.start();
      await waitUntil(
        `etcd health at ${etcdUrl}/health`,
        etcd,
        async () => {
          const r = await probe(`${etcdUrl}/health`);
          return r.status === 200 && r.body.includes('"true"');
        },
        startTimeoutMs,
        signal,
      );
      apiServer.start();
      await waitApiServer();
      await applyNodeRbac(adminKubeconfigPath);
      for (const p of controllers) p.start();
      await Promise.all(controllers.map(waitHealthy));
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'control plane start failed; stopping what was started');
      await stop().catch((stopErr: unknown) => log.error({ err: errorMessage(stopErr) }, 'cleanup after failed start'));
      throw err;
    }
    log.info({ apiServerUrl, ms: Date.now() - t0, runDir }, 'control plane ready');

    const issued = new Map<string, Promise<string>>();
    const userKubeconfig = (name: string, user: string, groups: string[] = []): Promise<string> => {
      if (!DNS1123_SUBDOMAIN.test(name)) {
        return Promise.reject(new ShoalError(`kubeconfig name '${name}' must be a DNS-1123 subdomain`));
      }
      let p = issued.get(name);
      if (!p) {
        p = (async () => {
          const certName = join('users', name);
          await pki.leaf(certName, 'ca', { cn: user, o: groups, usage: 'client' });
          const path = kubeconfigPath(`user-${name}`);
          await writeKubeconfig(path, apiServerUrl, caCertPath, user, pki.path(certName, 'crt'), pki.path(certName, 'key'));
          return path;
        })();
        p.catch(() => issued.delete(name));
        issued.set(name, p);
      }
      return p;
    };

    return {
      runDir,
      logDir: dirs.logs,
      apiServerUrl,
      etcdUrl,
      ports,
      adminKubeconfigPath,
      caCertPath,
      caKeyPath,
      servingCertPath: pki.path('apiserver', 'crt'),
      servingKeyPath: pki.path('apiserver', 'key'),
      kubeletClientUser: APISERVER_KUBELET_CLIENT,
      serviceAccount,
      logFiles,
      userKubeconfig,
      kubeletKubeconfig: (nodeName) => {
        if (!DNS1123_SUBDOMAIN.test(nodeName) || nodeName.length > 253) {
          return Promise.reject(new ShoalError(`node name '${nodeName}' must be a DNS-1123 subdomain`));
        }
        return userKubeconfig(`node-${nodeName}`, `system:node:${nodeName}`, ['system:nodes']);
      },
      pids: () => {
        const out: Partial<Record<ComponentName, number>> = {};
        for (const p of all) if (p.pid !== undefined) out[p.name] = p.pid;
        return out;
      },
      stopApiServer: async () => {
        if (stopping) throw new ShoalError('control plane is stopped');
        apiServerDown = true;
        await apiServer.stop(stopGraceMs);
      },
      startApiServer: async () => {
        if (stopping) throw new ShoalError('control plane is stopped');
        apiServer.start();
        await waitApiServer();
        apiServerDown = false;
        // Bring back controllers that lost their lease while the API server was away.
        const down = controllers.filter((p) => !p.running);
        for (const p of down) {
          clearTimeout(restartTimers.get(p));
          restartTimers.delete(p);
          p.start();
        }
        await Promise.all(down.map(waitHealthy));
      },
      stop,
    };
  };

  const wanted = opts.ports ?? {};
  for (let attempt = 1; ; attempt++) {
    const picked = await freePorts(5);
    const ports: ControlPlanePorts = {
      etcdClient: wanted.etcdClient ?? picked[0]!,
      etcdPeer: wanted.etcdPeer ?? picked[1]!,
      apiServer: wanted.apiServer ?? picked[2]!,
      controllerManager: wanted.controllerManager ?? picked[3]!,
      scheduler: wanted.scheduler ?? picked[4]!,
    };
    try {
      return await launch(ports);
    } catch (err) {
      // A port picked free can be taken by someone else before our process binds it: pick again.
      const message = errorMessage(err);
      const fixedPortBusy = Object.values(wanted).some((p) => message.includes(`127.0.0.1:${p}: bind`));
      if (attempt >= 3 || signal?.aborted || fixedPortBusy || !message.includes('address already in use')) throw err;
      log.warn({ attempt, err: message.split('\n')[0] }, 'a picked port was taken meanwhile; retrying with new ports');
    }
  }
}
