#!/usr/bin/env node
// Runs the compiled shoal (npm run build produces dist/).
await import('../dist/cli/main.js');
