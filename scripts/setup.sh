#!/usr/bin/env bash
# Installs and builds everything Shoal's tests, demo and benchmarks need, on a fresh Debian machine
# with Node 20: npm dependencies, Debian's tarantool (2.6.0, the compatibility lane), Tarantool 3.8
# (built once from the vendored source), vshard 0.1.42 (unpacked once from the vendored tarball), the
# tools the local cluster uses, the local Kubernetes control plane (built once), all cached under
# ~/.cache/shoal, and Shoal itself (dist/).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install tarantool iptables util-linux
npm_deps
bash scripts/provision-tarantool.sh
bash scripts/provision-vshard.sh
bash scripts/provision-kubernetes.sh
bash scripts/provision-linearizability.sh # after provision-kubernetes.sh: it installs Go
log "building Shoal (tsc)"
npm run --silent build
