#!/usr/bin/env bash
# Builds Tarantool 3.8.0 once from the vendored, offline source tarball into
# ${SHOAL_CACHE_DIR:-~/.cache/shoal}/tarantool-3.8.0/ and prints nothing else on later runs but a check.
# A `tarantool` >= 3 already on PATH is used instead (SHOAL_TARANTOOL3 names one explicitly).
# Users deploy tarantool/tarantool:3.x; Debian only has 2.6.0, the alpha of 2.6 (docs/TARANTOOL.md).
# Cold: about 6 minutes on 2 cores. The result links only against system libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

T3_VERSION=3.8.0
T3_SHA256=38bfc08a16b98bcf4fe71e7bcf54c14a629b007268f138e4e781c3cd7fe149c8
T3_TARBALL=tarantool-$T3_VERSION-src.tar.xz
CACHE_DIR=${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}
PREFIX=$CACHE_DIR/tarantool-$T3_VERSION
STAMP=$PREFIX/.stamp
STAMP_TEXT="tarantool $T3_VERSION from $T3_TARBALL ($T3_SHA256) RelWithDebInfo, bundled curl"

# The one place the repository looks outside itself: the vendored sources beside the checkout
# (SHOAL_VENDOR_DIR overrides it).
VENDOR_DIR=${SHOAL_VENDOR_DIR:-$(cd .. && pwd)/shared/vendor}

# Runtime libraries the build links against (also what a prebuilt 3.x on PATH needs).
RUNTIME_PKGS=(libreadline8 libncurses6 libssl3 libicu72 zlib1g libzstd1)
BUILD_PKGS=(build-essential cmake autoconf automake libtool pkg-config libreadline-dev libncurses-dev
  libssl-dev libicu-dev zlib1g-dev libzstd-dev xz-utils)

major_of() { "$1" --version 2>/dev/null | sed -n '1s/^Tarantool \([0-9]*\)\..*/\1/p'; }

if [[ -n ${SHOAL_TARANTOOL3:-} ]]; then
  [[ $(major_of "$SHOAL_TARANTOOL3") -ge 3 ]] 2>/dev/null || die "SHOAL_TARANTOOL3=$SHOAL_TARANTOOL3 is not a Tarantool >= 3"
  log "Tarantool 3: $SHOAL_TARANTOOL3 (SHOAL_TARANTOOL3)"
  exit 0
fi
if [[ -f $STAMP && $(cat "$STAMP") == "$STAMP_TEXT" && -x $PREFIX/bin/tarantool ]]; then
  log "Tarantool $T3_VERSION present in $PREFIX"
  exit 0
fi
on_path=$(command -v tarantool || true)
if [[ -n $on_path && $(major_of "$on_path") -ge 3 ]] 2>/dev/null; then
  log "Tarantool 3: $on_path ($("$on_path" --version | head -n1)) on PATH, not building"
  exit 0
fi

[[ -f $VENDOR_DIR/$T3_TARBALL ]] ||
  die "no $VENDOR_DIR/$T3_TARBALL: put the vendored sources there (or set SHOAL_VENDOR_DIR, or SHOAL_TARANTOOL3 to a Tarantool >= 3)"
apt_install "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}"

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.tarantool-$T3_VERSION.lock"
if ! flock -n 9; then
  log "another provision-tarantool.sh is building; waiting for it"
  flock 9
fi
if [[ -f $STAMP && $(cat "$STAMP") == "$STAMP_TEXT" && -x $PREFIX/bin/tarantool ]]; then
  log "Tarantool $T3_VERSION present in $PREFIX"
  exit 0
fi

START=$SECONDS
elapsed() { printf '%dm%02ds' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)); }
BUILD=$CACHE_DIR/tarantool-$T3_VERSION-build
rm -rf "$BUILD" "$PREFIX"
mkdir -p "$BUILD"
cleanup() { rm -rf "$BUILD"; }
trap cleanup EXIT

log "[1/4] checking $T3_TARBALL"
echo "$T3_SHA256  $VENDOR_DIR/$T3_TARBALL" | sha256sum -c --quiet - || die "$VENDOR_DIR/$T3_TARBALL: checksum mismatch"
tar -xJf "$VENDOR_DIR/$T3_TARBALL" -C "$BUILD"
SRC=$BUILD/tarantool-$T3_VERSION
[[ -f $SRC/CMakeLists.txt && -f $SRC/VERSION ]] || die "unexpected layout of $T3_TARBALL"

# Debian 12's curl 7.88 lacks curl_multi_get_handles: the bundled curl (no c-ares, no HTTP/2) links.
log "[2/4] cmake"
mkdir -p "$BUILD/out"
(cd "$BUILD/out" && cmake "$SRC" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DENABLE_BUNDLED_ZSTD=OFF -DENABLE_BUNDLED_LIBCURL=ON -DBUNDLED_LIBCURL_USE_ARES=OFF \
  -DBUNDLED_LIBCURL_USE_NGHTTP2=OFF >"$BUILD/cmake.log" 2>&1) || {
  tail -n 40 "$BUILD/cmake.log" >&2
  die "cmake failed"
}
log "[3/4] make tarantool ($(nproc) cores; cold ~6 min)"
(cd "$BUILD/out" && make -j"$(nproc)" tarantool >"$BUILD/make.log" 2>&1 && make api man-tarantool >>"$BUILD/make.log" 2>&1) || {
  tail -n 40 "$BUILD/make.log" >&2
  die "make failed"
}
log "[4/4] installing into $PREFIX"
(cd "$BUILD/out" && cmake --install . >"$BUILD/install.log" 2>&1) || {
  tail -n 40 "$BUILD/install.log" >&2
  die "cmake --install failed"
}
ver=$("$PREFIX/bin/tarantool" --version | head -n1)
[[ $ver == "Tarantool $T3_VERSION"* ]] || die "$PREFIX/bin/tarantool --version says '$ver'"
echo "$STAMP_TEXT" >"$STAMP"
log "$ver built into $PREFIX in $(elapsed)"
