#!/usr/bin/env bash
# `npm run chaos -- --minutes N --seed S [--tarantool 3|2.6]`: installs and builds what is missing (scripts/setup.sh),
# then runs the chaos suite (tools/chaos/main.ts) from dist/ on a local cluster of its own.
# Exit code 1 on any violation (lost acknowledged write, two writable instances, no convergence).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bash scripts/setup.sh
log "chaos"
exec node dist/tools/chaos/main.js "$@"
