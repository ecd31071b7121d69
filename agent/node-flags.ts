// The flags `node` runs the agent with: in the image's ENTRYPOINT (Dockerfile.agent, checked by
// test/unit/agent-node-flags.test.ts) and on the process kubelet (demo/images.ts). They trade a little
// GC work for memory: the agent keeps ~10 MB of live heap and allocates slowly, so V8's defaults
// (young semi-spaces growing to 16 MB, four platform threads) mostly hold empty pages.
// Measured (issue 16; tools/import-rss.ts with 3 s of garbage after importing dist/agent/runtime.js,
// median of 5, Node 20.20): 79 MB RSS by default → 60 MB with these flags. Bench "agent idle RSS"
// (quick run, 3 agents): 77.9 MB → 63.2 MB median. Rejected: --no-opt (−5 MB, but 2.5× the CPU on
// YAML parsing, which every probe does).
export const AGENT_NODE_FLAGS: readonly string[] = [
  // Young generation capped at 1 MB semi-spaces (default: grows to 16 MB): −15 MB. Costs more,
  // shorter scavenges; a loop doing nothing but allocate spends ~15–20 % more CPU, an agent idles at
  // a few % of one core.
  '--max-semi-space-size=1',
  // Heap growing and code for size rather than speed: −2 MB.
  '--optimize-for-size',
  // One V8 platform thread (default 4) for concurrent marking and compiling of a ~10 MB heap: −2 MB
  // (stacks and malloc arenas of the threads).
  '--v8-pool-size=1',
  // Old space capped well under the container's memory limit (webhook/agent-container.ts): V8 collects
  // hard before the limit and dies with a heap message instead of a silent OOM kill.
  '--max-old-space-size=128',
];
