#!/usr/bin/env bash
# Installs and builds everything Shoal's tests, demo and benchmarks need, on a fresh Debian machine
# with Node 20: npm dependencies, Debian's tarantool, the tools the local cluster uses, the local
# Kubernetes control plane (built once, cached under ~/.cache/shoal), and Shoal itself (dist/).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install tarantool iptables util-linux
npm_deps
bash scripts/provision-kubernetes.sh
log "building Shoal (tsc)"
npm run --silent build
