#!/usr/bin/env bash
# The test command (`npm test`): installs what is missing, builds, lints, type-checks, and runs
# every test — unit, integration (real Tarantool) and end-to-end (real local Kubernetes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bash scripts/setup.sh
log "lint"
npx eslint .
log "typecheck"
npx tsc -p tsconfig.json --noEmit
if (($#)); then
  log "tests: $*"
  npx vitest run "$@"
else
  # Unit and integration first, then the end-to-end files on their own: run side by side on two
  # cores, the e2e clusters starved the integration tests' own control planes into time-outs. The
  # two e2e projects run beside each other: at most two clusters, one file each.
  log "tests: unit + integration"
  npx vitest run --project unit --project integration
  log "tests: e2e"
  npx vitest run --project e2e --project e2e-own
fi
