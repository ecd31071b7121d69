#!/usr/bin/env bash
# Unpacks vshard 0.1.42 (pure Lua) once from the vendored, offline tarball into
# ${SHOAL_CACHE_DIR:-~/.cache/shoal}/vshard-0.1.42/, whose root goes on LUA_PATH
# (<root>/?.lua;<root>/?/init.lua). Sharded clusters run it on Tarantool 3.8 (docs/TARANTOOL3.md): the
# local Tarantool 3 image shows <root>/vshard at /usr/local/share/tarantool/vshard (demo/images.ts),
# integration tests put the root on LUA_PATH (test/support/tarantool.ts). Later runs only check.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

VSHARD_VERSION=0.1.42
VSHARD_SHA256=9a92071c283eafe95b2bdf442242caffe11394287485a471012c002bc74b9c66
VSHARD_TARBALL=vshard-$VSHARD_VERSION.tar.gz
CACHE_DIR=${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}
ROOT=$CACHE_DIR/vshard-$VSHARD_VERSION
STAMP=$ROOT/.stamp
STAMP_TEXT="vshard $VSHARD_VERSION from $VSHARD_TARBALL ($VSHARD_SHA256)"
VENDOR_DIR=${SHOAL_VENDOR_DIR:-$(cd .. && pwd)/shared/vendor}

present() { [[ -f $STAMP && $(cat "$STAMP") == "$STAMP_TEXT" && -f $ROOT/vshard/init.lua ]]; }

if present; then
  log "vshard $VSHARD_VERSION present in $ROOT"
  exit 0
fi
[[ -f $VENDOR_DIR/$VSHARD_TARBALL ]] ||
  die "no $VENDOR_DIR/$VSHARD_TARBALL: put the vendored sources there (or set SHOAL_VENDOR_DIR)"

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.vshard-$VSHARD_VERSION.lock"
flock 9
if present; then
  log "vshard $VSHARD_VERSION present in $ROOT"
  exit 0
fi
echo "$VSHARD_SHA256  $VENDOR_DIR/$VSHARD_TARBALL" | sha256sum -c --quiet - || die "$VENDOR_DIR/$VSHARD_TARBALL: checksum mismatch"
TMP=$(mktemp -d "$CACHE_DIR/.vshard-$VSHARD_VERSION.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
tar -xzf "$VENDOR_DIR/$VSHARD_TARBALL" -C "$TMP" --strip-components=1
[[ -f $TMP/vshard/init.lua && -f $TMP/vshard/router/init.lua && -f $TMP/vshard/storage/init.lua ]] ||
  die "unexpected layout of $VSHARD_TARBALL (no vshard/init.lua, router/init.lua, storage/init.lua)"
# Readable by the pods' uids (the local Tarantool 3 image bind-mounts it read-only).
chmod -R a+rX "$TMP"
echo "$STAMP_TEXT" >"$TMP/.stamp"
rm -rf "$ROOT"
mv "$TMP" "$ROOT"
trap - EXIT
log "vshard $VSHARD_VERSION unpacked into $ROOT"
