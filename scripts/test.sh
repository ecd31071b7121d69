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
log "tests"
npx vitest run "$@"
