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
  # two e2e projects run beside each other, as two vitest processes (one process runs its projects'
  # files one after the other when they disallow file parallelism): at most two clusters at once.
  log "tests: unit + integration"
  npx vitest run --project unit --project integration
  log "tests: e2e (shared cluster), with e2e-own (clusters of their own) beside it"
  own_log=$(mktemp)
  npx vitest run --project e2e-own >"$own_log" 2>&1 &
  own_pid=$!
  shared_rc=0
  npx vitest run --project e2e || shared_rc=$?
  own_rc=0
  wait "$own_pid" || own_rc=$?
  log "tests: e2e-own (its output)"
  cat "$own_log"
  rm -f "$own_log"
  if ((shared_rc != 0 || own_rc != 0)); then
    log "e2e failed (e2e exit $shared_rc, e2e-own exit $own_rc)"
    exit 1
  fi
fi
