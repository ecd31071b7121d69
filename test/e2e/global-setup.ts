import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { createLogger } from '../../common/log.js';
import { unixUidRange } from '../../localcluster/kubelet/ipam.js';
import { freeIpBase } from '../../localcluster/kubelet/ipbase-lock.js';
import { pidsOfUids } from '../../localcluster/kubelet/process.js';
import { startShoalStack, type ShoalStack } from '../../demo/shoal-stack.js';
import { buildIfStale } from './build-setup.js';

// One local cluster (real control plane + process kubelet + provisioner) with Shoal's webhook
// installed, shared by every e2e file; each file works in its own namespace. Tear-down proves that
// nothing the cluster started is left running and that no iptables rule stays behind.

export const E2E_UID_BASE = 200_000; // the kubelet's default

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the shared cluster (kubectl works with it). */
    kubeconfig: string;
    apiServerUrl: string;
    /** The cluster's run directory (control plane, kubelet pods, volumes, logs). */
    runDir: string;
    /** The kubelet's JSON state (pods' IPs, uids, pids, volume and log paths): read with readPodInfo. */
    stateFile: string;
    nodeName: string;
    /** Chain prefix of the cluster's netfault helper (createNetFault(prefix) in any process). */
    netfaultPrefix: string;
    /** Pod IP base of the kubelet (pods get <base>.2 …). */
    ipBase: string;
    webhookUrl: string;
    /** Where every component of the cluster logs (JSON lines). */
    logFile: string;
  }
}

/** Processes whose command line mentions the run directory (control plane, webhook, pods). */
async function processesUnder(runDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim();
      if (cmd.includes(runDir)) found.push(`${entry}: ${cmd.slice(0, 200)}`);
    } catch {
      // gone
    }
  }
  return found;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await buildIfStale();
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-e2e-'));
  const logFile = path.join(runDir, 'e2e.log');
  const logger = createLogger({ component: 'test' }, undefined, logFile);
  const t0 = Date.now();
  // Not the demo's 127.0.1, and not another e2e run's: several can share the machine. Two runs
  // starting together may pick the same free base; the kubelet's lock refuses the second, which
  // then takes the next one.
  let ipBase = '';
  let name = '';
  let stack: ShoalStack | undefined;
  for (let attempt = 1; !stack; attempt++) {
    ipBase = freeIpBase(20, 29);
    name = `e2e${ipBase.split('.')[2]}`; // names the netfault chains apart too
    try {
      stack = await startShoalStack({ runDir: path.join(runDir, `try${attempt}`), name, ipBase, logger });
    } catch (err) {
      if (attempt >= 5 || !/is taken by a kubelet/.test(err instanceof Error ? err.message : '')) throw err;
    }
  }
  const { cluster } = stack;
  process.stderr.write(`[e2e] local cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s: KUBECONFIG=${cluster.kubeconfig}, logs ${logFile}\n`);

  project.provide('kubeconfig', cluster.kubeconfig);
  project.provide('apiServerUrl', cluster.apiServerUrl);
  project.provide('runDir', runDir);
  project.provide('stateFile', cluster.stateFile);
  project.provide('nodeName', cluster.nodeName);
  project.provide('netfaultPrefix', `SHOAL-NF-${name}`);
  project.provide('ipBase', ipBase);
  project.provide('webhookUrl', stack.webhook.url);
  project.provide('logFile', logFile);

  return async () => {
    await stack.stop();
    const problems: string[] = [];
    const [minUid, maxUid] = unixUidRange(ipBase, E2E_UID_BASE);
    const podProcs = pidsOfUids(minUid, maxUid);
    if (podProcs.length) problems.push(`pod processes still running: ${podProcs.join(', ')}`);
    const under = await processesUnder(runDir);
    if (under.length) problems.push(`processes of the cluster still running:\n${under.join('\n')}`);
    const rules = execFileSync('iptables', ['-w', '5', '-S'], { encoding: 'utf8' });
    if (rules.includes(`SHOAL-NF-${name}`)) problems.push(`netfault rules left in iptables:\n${rules}`);
    if (problems.length) throw new Error(`the e2e cluster left things behind (run dir kept: ${runDir}):\n${problems.join('\n')}`);
    const failed = project.vitest.state.getCountOfFailedTests() > 0;
    if (failed || process.env.SHOAL_KEEP_E2E === '1') {
      process.stderr.write(`[e2e] run directory kept for inspection: ${runDir} (logs ${logFile})\n`);
    } else {
      await rm(runDir, { recursive: true, force: true });
    }
  };
}
