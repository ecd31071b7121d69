// The architecture rules in eslint.config.js bite: a fixture that breaks each one, linted as if it
// lived where the rule applies, is reported — and the same code where the rule does not apply is not.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message);
}

describe('architecture lint rules', () => {
  it.each([
    ['agent/member/fixture.ts', "import { startLocalCluster } from '../../localcluster/cluster.js';\nexport const x = startLocalCluster;\n", /never imports the harness/],
    ['webhook/fixture.ts', "import { sampleTarantool } from '../tools/sampler.js';\nexport const x = sampleTarantool;\n", /never imports the harness/],
    ['common/fixture.ts', "import * as vega from 'vega';\nexport const x = vega;\n", /harness-only package/],
    ['cli/fixture.ts', "export { eventually } from '../test/support/wait.js';\n", /never imports the harness/],
    ['agent/decide/fixture.ts', "import { readFile } from 'node:fs/promises';\nexport const x = readFile;\n", /pure code/],
    ['agent/decide/fixture.ts', "import { LocalInstance } from '../instance/local.js';\nexport const x = LocalInstance;\n", /pure code/],
    ['agent/decide/fixture.ts', "import { ShoalError } from '../../common/log.js';\nexport const x = ShoalError;\n", /imports only agent\/decide\//],
    ['agent/tarantool/fixture.ts', "import { pino } from 'pino';\nexport const x = pino;\n", /pure code/],
    ['agent/kube/fixture.ts', "import { CoreV1Api } from '@kubernetes/client-node';\nexport const x = CoreV1Api;\n", /types only/],
    ['localcluster/kubelet/fixture.ts', "import { KubeConfig, type V1Pod } from '@kubernetes/client-node';\nexport const x: [typeof KubeConfig, V1Pod | null] = [KubeConfig, null];\n", /types only/],
  ])('%s: %s is reported', async (file, code, message) => {
    const messages = await restrictedImports(file, code);
    expect(messages.length, messages.join('\n')).toBeGreaterThan(0);
    expect(messages.join('\n')).toMatch(message);
  });

  it.each([
    ['agent/decide/fixture.ts', "import { covers } from '../tarantool/vclock.js';\nimport type { Action } from './model.js';\nimport { ShoalError } from '../../common/errors.js';\nexport const x: [typeof covers, Action | null, typeof ShoalError] = [covers, null, ShoalError];\n"],
    ['agent/tarantool/fixture.ts', "import type { OfflineVclock } from '../instance/state.js';\nexport type X = OfflineVclock;\n"],
    ['agent/member/fixture.ts', "import { readFile } from 'node:fs/promises';\nimport { pino } from 'pino';\nexport const x = [readFile, pino];\n"],
    ['localcluster/fixture.ts', "import { sampleTarantool } from '../tools/sampler.js';\nexport const x = sampleTarantool;\n"],
    ['demo/fixture.ts', "import type { V1Pod } from '@kubernetes/client-node';\nexport type X = V1Pod;\n"],
    ['test/integration/fixture.test.ts', "import { Watch } from '@kubernetes/client-node';\nexport const x = Watch;\n"],
  ])('%s: allowed imports pass', async (file, code) => {
    expect(await restrictedImports(file, code)).toEqual([]);
  });
});
