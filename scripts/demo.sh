#!/usr/bin/env bash
# `npm run demo`: installs and builds what is missing (scripts/setup.sh), then runs the demo on the
# local cluster until Ctrl-C. Arguments are passed on (e.g. -- --state-file /tmp/demo.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/demo/main.js "$@"
