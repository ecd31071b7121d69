// Copies non-TypeScript assets (the Lua module, templates) next to the compiled JavaScript in dist/.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';

const ASSET = /\.(lua|yaml|json|txt)$/;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (ASSET.test(name)) {
      mkdirSync(dirname(join('dist', p)), { recursive: true });
      cpSync(p, join('dist', p));
    }
  }
}
for (const top of ['common', 'webhook', 'agent', 'localcluster']) walk(top);
