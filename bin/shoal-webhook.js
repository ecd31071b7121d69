#!/usr/bin/env node
// Runs the compiled shoal-webhook (npm run build produces dist/).
await import('../dist/webhook/main.js');
