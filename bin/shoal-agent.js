#!/usr/bin/env node
// Runs the compiled shoal-agent (npm run build produces dist/).
await import('../dist/agent/main.js');
