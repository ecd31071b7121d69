#!/usr/bin/env bash
# Builds the chaos suite's linearizability checker (tools/linearizability, Go) against the vendored
# Porcupine 1.3.0 (../shared/vendor/porcupine-1.3.0.tar.gz: the Go module proxy is not reachable, so
# the module is unpacked into the cache and used through a `replace` on a copy of the sources), with
# Debian's Go (installed by provision-kubernetes.sh), into
# ${SHOAL_CACHE_DIR:-~/.cache/shoal}/linearizability/shoal-linearizability. Rebuilt only when the
# sources or the tarball change (their hash is kept beside the binary). Prints nothing else on later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CACHE_DIR=${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}
OUT=$CACHE_DIR/linearizability
# The vendored sources beside the checkout, as for Tarantool (SHOAL_VENDOR_DIR overrides it).
VENDOR_DIR=${SHOAL_VENDOR_DIR:-$(cd .. && pwd)/shared/vendor}
TARBALL=${SHOAL_PORCUPINE_TARBALL:-$VENDOR_DIR/porcupine-1.3.0.tar.gz}
PORCUPINE_SHA256=cd3403825e444232ef62803132f70d50def920c250ecae233de90a034ffbdcb3

command -v go >/dev/null || die "go not on PATH (scripts/provision-kubernetes.sh installs Debian's golang-go)"
[[ -f $TARBALL ]] || die "$TARBALL missing (the vendored Porcupine 1.3.0)"
hash=$(cat tools/linearizability/go.mod tools/linearizability/*.go "$TARBALL" | sha256sum | cut -c1-16)
[[ -x $OUT/shoal-linearizability && $(cat "$OUT/stamp" 2>/dev/null) == "$hash" ]] && exit 0

log "building the linearizability checker (Go, Porcupine 1.3.0)"
echo "$PORCUPINE_SHA256  $TARBALL" | sha256sum -c --quiet - || die "$TARBALL does not have the sha256 the vendor README gives"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
SRC=$OUT/porcupine-1.3.0
if [[ ! -f $SRC/go.mod ]]; then
  rm -rf "$SRC" && tar -xzf "$TARBALL" -C "$OUT"
fi
BUILD=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
cp tools/linearizability/go.mod tools/linearizability/*.go "$BUILD/"
rm -f "$BUILD"/*_test.go
export GOPROXY=off GOFLAGS=-mod=mod GOSUMDB=off GOCACHE=$OUT/go-build-cache
(cd "$BUILD" && go mod edit -replace "github.com/anishathalye/porcupine=$SRC" && go build -o "$OUT/shoal-linearizability.new" .)
mv "$OUT/shoal-linearizability.new" "$OUT/shoal-linearizability"
echo "$hash" >"$OUT/stamp"
