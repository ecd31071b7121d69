#!/usr/bin/env bash
# `npm run bench [-- --quick] [--tarantool 3|2.6] [--only NAME,…] [--out FILE]`: installs and builds what is missing
# (scripts/setup.sh), then runs the benchmarks (bench/run.ts) from dist/. Prints a table and writes
# bench/results.json; a slow machine gets slow numbers, not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bash scripts/setup.sh
log "benchmarks"
exec node dist/bench/run.js "$@"
