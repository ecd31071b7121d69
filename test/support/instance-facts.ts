// Facts about a pod's Tarantool and the cluster's persisted state, read the way an operator would
// (the console on the pod's run volume, the state ConfigMap, kubectl): shared by the e2e files.
import { ConsoleClient } from '../../agent/console/client.js';
import { stateConfigMapName } from '../../common/names.js';
import { kubectl, type KubeClients } from '../../tools/kube.js';
import { consoleOf } from '../../tools/shoal-cluster.js';

/** Runs Lua on a pod's Tarantool through its console (host path of the shoal-run volume). */
export async function evalOn(state: string, ns: string, pod: string, lua: string, args: Array<string | number | null> = []): Promise<unknown> {
  const socketPath = consoleOf(state, ns, pod);
  if (!socketPath) throw new Error(`no console for ${ns}/${pod}`);
  const client = new ConsoleClient({ socketPath, timeoutMs: 10_000, connectAttemptMs: 2_000 });
  try {
    return await client.eval(lua, args, { failFast: true });
  } finally {
    await client.close();
  }
}

export interface MemberFacts {
  uuid: string;
  ro: boolean;
  /** box.cfg.replication as host:port (credentials stripped). */
  replication: string[];
  quorum: number | null;
  /** box.space._cluster instance UUIDs. */
  cluster: string[];
}

const FACTS_LUA = `
local r = box.cfg.replication
if type(r) ~= 'table' then r = r == nil and {} or {r} end
local uris = {}
for _, u in ipairs(r) do uris[#uris + 1] = tostring(u):gsub('^.*@', '') end
local ids = {}
for _, t in box.space._cluster:pairs() do ids[#ids + 1] = t[2] end
return {uuid = box.info.uuid, ro = box.info.ro, replication = uris, quorum = box.cfg.replication_synchro_quorum, cluster = ids}`;

export async function factsOf(state: string, ns: string, pod: string): Promise<MemberFacts> {
  const f = (await evalOn(state, ns, pod, FACTS_LUA)) as { uuid: string; ro: boolean; replication: unknown; quorum: number | null; cluster: unknown };
  // An empty Lua table comes back as {} rather than [].
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String).sort() : []);
  return { uuid: f.uuid, ro: f.ro, replication: list(f.replication), quorum: f.quorum, cluster: list(f.cluster) };
}

export interface PersistedEnvelope {
  term: number;
  coordinator: string;
  state: unknown;
}

export async function persisted(kc: KubeClients, ns: string, cluster: string): Promise<PersistedEnvelope> {
  const cm = await kc.in(ns).configMaps.get(stateConfigMapName(cluster));
  const text = cm.data?.['state.json'];
  if (!text) throw new Error(`ConfigMap ${stateConfigMapName(cluster)} has no state.json`);
  return JSON.parse(text) as PersistedEnvelope;
}

export async function scale(kc: string, ns: string, name: string, replicas: number): Promise<void> {
  const r = await kubectl(kc, ['-n', ns, 'scale', `statefulset/${name}`, `--replicas=${replicas}`]);
  if (r.code !== 0) throw new Error(`kubectl scale failed: ${r.stderr}`);
}
