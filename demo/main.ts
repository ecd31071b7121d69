import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import type { V1Pod } from '@kubernetes/client-node';
import { createLogger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import { CLUSTER_LABEL } from '../common/names.js';
import { namespaced, type Resource } from '../common/kube/resources.js';
import type { AgentStatus } from '../common/status.js';
import { repoRoot } from './repo-root.js';
import { demoState, writeStateFile } from './state-file.js';
import { sleep } from '../common/time.js';
import { startShoalStack, type ShoalStack } from './shoal-stack.js';
import { exampleShape } from './example.js';

// `npm run demo`: the local cluster, the webhook, and an example from examples/ (by default
// storage.yaml: one replica set "storage" of 3 Tarantool 3 instances in the 3.x native style,
// cluster "demo"; `--example storage-lua` is the same in the Lua style; `--example sharded` a sharded
// cluster of two storage replica sets and routers), kept running until Ctrl-C; then every process it
// started is stopped.

const run = promisify(execFile);
const NAMESPACE = 'default';
const READY_TIMEOUT_MS = 240_000;

const say = (line: string): void => void process.stdout.write(`${line}\n`);

const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

// Bounded by the layer, not ended by Ctrl-C: the loops below check for it themselves and then stop
// the stack cleanly (an aborted list would end the demo with an error instead).
async function listPods(pods: Resource<V1Pod>, cluster: string): Promise<V1Pod[]> {
  const list = await pods.list({ labelSelector: `${CLUSTER_LABEL}=${cluster}` });
  return list.items.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

async function agentStatus(ip: string | undefined): Promise<AgentStatus | null> {
  if (!ip) return null;
  try {
    const res = await fetch(`http://${ip}:8080/status`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as AgentStatus) : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const opts = new Command('demo')
    .option('--state-file <file>', 'keep this JSON file updated with the kubeconfig, API server and every pod (SPEC §6)')
    .option('--run-dir <dir>', 'where the cluster keeps its data and logs', path.join(os.tmpdir(), 'shoal-demo'))
    .option('--ip-base <a.b.c>', 'pods get <ip-base>.2, .3, … on loopback', '127.0.1')
    .option('--no-wait', 'do not wait for the pods to become ready')
    .option('--example <name>', 'which examples/<name>.yaml to apply', 'storage')
    .parse(process.argv)
    .opts<{ stateFile?: string; runDir: string; ipBase: string; wait: boolean; example: string }>();
  const example = path.join(repoRoot(), 'examples', `${opts.example}.yaml`);
  if (!/^[a-z0-9-]+$/.test(opts.example) || !existsSync(example)) {
    throw new Error(`no example ${JSON.stringify(opts.example)}: choose one of examples/*.yaml by its name (e.g. storage, storage-lua, sharded)`);
  }
  const shape = exampleShape(readFileSync(example, 'utf8'));
  const CLUSTER = shape.cluster;

  const runDir = path.resolve(opts.runDir);
  rmSync(runDir, { recursive: true, force: true }); // a fresh cluster every time
  const logFile = path.join(runDir, 'shoal.log');
  const logger = createLogger({ component: 'demo' }, undefined, logFile);
  say(`Starting the local Kubernetes control plane and the process kubelet (logs: ${logFile}) …`);

  const interrupted = new AbortController();
  const onSignal = (): void => interrupted.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let stack: ShoalStack | undefined;
  let stateTimer: NodeJS.Timeout | undefined;
  try {
    stack = await startShoalStack({ runDir, name: 'demo', ipBase: opts.ipBase, logger, signal: interrupted.signal });
    const { cluster } = stack;
    say(`API server ${cluster.apiServerUrl}; webhook ${stack.webhook.url}`);
    await stack.prepareNamespace(NAMESPACE);
    const env = { ...process.env, KUBECONFIG: cluster.kubeconfig };
    const applied = await run('kubectl', ['apply', '-n', NAMESPACE, '-f', example], { env });
    say(applied.stdout.trim());

    const podsApi = namespaced(stack.client, NAMESPACE).pods;
    const writeState = async (): Promise<void> => {
      if (!opts.stateFile) return;
      const pods = await podsApi.list();
      writeStateFile(opts.stateFile, demoState(cluster.kubeconfig, cluster.apiServerUrl, pods.items, cluster.podInfo));
    };
    await writeState();
    stateTimer = setInterval(() => void writeState().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'state file not updated')), 1000);

    if (opts.wait) {
      const sets = shape.statefulSets.map((s) => `"${s.name}"`).join(', ');
      say(`Waiting for the ${shape.pods} pods of StatefulSet${shape.statefulSets.length > 1 ? 's' : ''} ${sets} to be Ready …`);
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let pods = await listPods(podsApi, CLUSTER);
      while (!interrupted.signal.aborted && Date.now() < deadline && !(pods.length === shape.pods && pods.every(isReady))) {
        await sleep(1000, interrupted.signal).catch(() => undefined);
        pods = await listPods(podsApi, CLUSTER);
      }
      if (pods.length === shape.pods && pods.every(isReady)) say('All pods are Ready.');
      else if (!interrupted.signal.aborted) say(`Not all pods became Ready within ${READY_TIMEOUT_MS / 1000} s; the table below shows where they are.`);
    }

    if (!interrupted.signal.aborted) {
      const pods = await listPods(podsApi, CLUSTER);
      say('');
      say('POD          IP            READY  ROLE          STATUS URL');
      let master: string | undefined;
      for (const pod of pods) {
        const ip = pod.status?.podIP;
        const role = (await agentStatus(ip))?.instance.role ?? 'unknown';
        if (role === 'master') master = pod.metadata?.name;
        say(`${(pod.metadata?.name ?? '').padEnd(12)} ${(ip ?? '-').padEnd(13)} ${(isReady(pod) ? 'yes' : 'no').padEnd(6)} ${role.padEnd(13)} ${ip ? `http://${ip}:8080/status` : '-'}`);
      }
      if (!master) say('No master yet: the instances wait unconfigured until a coordinator configures them (see the agents\' logs).');
      const consoleOf = (name: string): string => `${cluster.podInfo(NAMESPACE, name)?.hostPathOf('shoal-run') ?? '<run dir>'}/console.sock`;
      say('');
      say('Try it (in another terminal):');
      say(`  export KUBECONFIG=${cluster.kubeconfig}`);
      say('  kubectl get pods -o wide; kubectl get events');
      say(`  npx shoal status --cluster ${CLUSTER}`);
      const first = pods[0]?.metadata?.name ?? 'storage-0';
      say(`  kubectl port-forward pod/${first} 18080:8080 &   # then: curl -s localhost:18080/status | jq .`);
      say('  npx shoal status --url http://127.0.0.1:18080/status');
      say(`  kubectl exec ${first} -c tarantool -- sh -c 'echo "$HOSTNAME: $(id -u) in $(pwd)"'`);
      const router = shape.statefulSets.find((st) => st.shardingRole === 'router');
      if (router) {
        say(`  tarantoolctl connect ${consoleOf(`${router.name}-0`)}   # a router's console: kv_put('hello', 'world'), kv_get('hello')`);
      } else if (master) {
        say(`  tarantoolctl connect ${consoleOf(master)}   # the master's console: box.space.kv:insert{'hello', 'world'}`);
        say(`  tarantoolctl connect ${consoleOf(pods.find((p) => p.metadata?.name !== master)?.metadata?.name ?? master)}   # a replica's: box.space.kv:select{}`);
      }
      say('Press Ctrl-C to stop everything.');
      await new Promise<void>((resolve) => interrupted.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
  } finally {
    if (stateTimer) clearInterval(stateTimer);
    say('Stopping every process the demo started …');
    await stack?.stop();
    say('Stopped.');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
