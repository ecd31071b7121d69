#!/usr/bin/env bash
# Builds the local Kubernetes control plane (etcd comes from Debian; kube-apiserver,
# kube-controller-manager and kube-scheduler v1.20.2 are built offline from Debian's `kubernetes`
# source package) into ${SHOAL_CACHE_DIR:-~/.cache/shoal}/kubernetes-v1.20.2/bin/.
# Facts behind every step: docs/KUBERNETES.md. Idempotent: once the stamp exists, it only checks.
# A cold build takes ~5 min on 2 cores and ~1.5 GB of RAM; the Go build cache is kept for relinks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

K8S_VERSION=v1.20.2
K8S_MAJOR=1
K8S_MINOR=20
SRC_PACKAGE=kubernetes
# The source package version whose orig tarball is upstream v1.20.2 with vendor/.
SRC_VERSION_RE='^1\.20\.5\+really1\.20\.2-'
DEBIAN_SUITE=bookworm
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

CACHE_DIR=${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}
KDIR=$CACHE_DIR/kubernetes-$K8S_VERSION
BIN_DIR=$KDIR/bin
STAMP=$BIN_DIR/.stamp
STAMP_TEXT="$K8S_VERSION built from Debian source $SRC_PACKAGE (reflect2 1.0.2, json-iterator 1.1.12, openapi-gen)"

have_binaries() {
  [[ -f $STAMP && $(cat "$STAMP") == "$STAMP_TEXT" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x $BIN_DIR/$b ]] || return 1; done
}

# Tools needed at run time (etcd, openssl, kubectl for humans; curl and jq for the README's
# commands the e2e tests run) are checked on every run.
apt_install etcd-server openssl curl jq
if ! command -v kubectl >/dev/null 2>&1; then apt_install kubernetes-client; fi

# Debian's kubectl of the control plane's version, unpacked beside the binaries whatever kubectl is
# on PATH (a newer one may be, e.g. Google Cloud SDK's): the e2e tests run kubectl exec and
# port-forward with both. Path: debianKubectlPath() in localcluster/controlplane/binaries.ts.
KUBECTL_DIR=$CACHE_DIR/kubectl-$K8S_VERSION
if [[ ! -x $KUBECTL_DIR/usr/bin/kubectl ]]; then
  log "unpacking Debian's kubernetes-client (kubectl $K8S_VERSION) into $KUBECTL_DIR"
  DEB_TMP=$(mktemp -d)
  if ! (cd "$DEB_TMP" && apt-get download -q kubernetes-client >/dev/null 2>&1); then
    apt-get update -q >/dev/null
    (cd "$DEB_TMP" && apt-get download -q kubernetes-client >/dev/null 2>&1) || die "apt-get download kubernetes-client failed"
  fi
  mkdir -p "$KUBECTL_DIR"
  dpkg-deb -x "$DEB_TMP"/kubernetes-client_*.deb "$KUBECTL_DIR"
  rm -rf "$DEB_TMP"
fi
"$KUBECTL_DIR/usr/bin/kubectl" version --client --short 2>/dev/null | grep -q "$K8S_VERSION" ||
  die "$KUBECTL_DIR/usr/bin/kubectl is not kubectl $K8S_VERSION (Debian's kubernetes-client changed?)"

if have_binaries; then
  log "Kubernetes $K8S_VERSION binaries present in $BIN_DIR"
  exit 0
fi

apt_install golang-go golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev dpkg-dev ca-certificates
command -v go >/dev/null || die "go not on PATH after installing golang-go"

mkdir -p "$KDIR"
# One build at a time: the demo and the tests may both call this script.
exec 9>"$KDIR/.lock"
if ! flock -n 9; then
  log "another provision-kubernetes.sh is building; waiting for it"
  flock 9
fi
if have_binaries; then
  log "Kubernetes $K8S_VERSION binaries present in $BIN_DIR"
  exit 0
fi

START=$SECONDS
elapsed() { printf '%dm%02ds' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)); }

# A fixed build path under the lock (a leftover of an interrupted run is discarded): the Go
# cache keys include it.
BUILD=$KDIR/build
rm -rf "$BUILD"
mkdir -p "$BUILD"
cleanup() { rm -rf "$BUILD"; }
trap cleanup EXIT

# --- 1. Download the source package through a private apt configuration -----------------------
# Mirror the host's own Debian mirror when it names one (deb822 or one-line format).
MIRROR=${SHOAL_DEBIAN_MIRROR:-}
if [[ -z $MIRROR ]]; then
  MIRROR=$(
    cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
      grep -v '^[[:space:]]*#' | grep -oE '(https?|mirror\+[a-z]+)://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true
  )
  MIRROR=${MIRROR%/}
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
APT_DIR=$BUILD/apt
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$BUILD/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $DEBIAN_SUITE main" >"$APT_DIR/sources.list"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "APT::Sandbox::User=root" # the private dirs sit under a home _apt cannot read
)
[[ $(id -u) -eq 0 ]] || APT_OPTS=("${APT_OPTS[@]:0:8}")
log "[1/5] downloading Debian source package '$SRC_PACKAGE' from $MIRROR $DEBIAN_SUITE (private apt config)"
apt-get -q "${APT_OPTS[@]}" update >"$BUILD/apt-update.log" 2>&1 || {
  cat "$BUILD/apt-update.log" >&2
  die "apt-get update with the private source list failed"
}
SRC_VERSION=$(apt-cache "${APT_OPTS[@]}" showsrc "$SRC_PACKAGE" | sed -n 's/^Version: //p' | grep -E "$SRC_VERSION_RE" | head -n1 || true)
[[ -n $SRC_VERSION ]] || die "no $SRC_PACKAGE source package matching $SRC_VERSION_RE in $MIRROR $DEBIAN_SUITE"
(cd "$BUILD/src" && apt-get -q "${APT_OPTS[@]}" source --download-only "$SRC_PACKAGE=$SRC_VERSION" >"$BUILD/apt-source.log" 2>&1) || {
  cat "$BUILD/apt-source.log" >&2
  die "apt-get source --download-only $SRC_PACKAGE=$SRC_VERSION failed"
}
ORIG=$(ls "$BUILD"/src/"${SRC_PACKAGE}"_*.orig.tar.* 2>/dev/null | head -n1 || true)
[[ -n $ORIG ]] || die "the orig tarball of $SRC_PACKAGE $SRC_VERSION was not downloaded (see $BUILD/src)"
log "      got $(basename "$ORIG") ($(du -h "$ORIG" | cut -f1)) in $(elapsed)"

# --- 2. Unpack the upstream tree (Debian's patches are not applied: we want upstream + vendor/) --
export GOPATH=$BUILD/gopath
TREE=$GOPATH/src/k8s.io/kubernetes
mkdir -p "$TREE"
log "[2/5] unpacking into $TREE"
tar -xf "$ORIG" -C "$TREE" --strip-components=1
[[ -f $TREE/cmd/kube-apiserver/apiserver.go && -d $TREE/vendor/k8s.io ]] ||
  die "unexpected layout of $(basename "$ORIG"): no cmd/kube-apiserver or vendor/k8s.io"

# --- 3. Fix 1: reflect2 1.0.1 crashes with Go >= 1.18; use Debian's reflect2 1.0.2 + json-iterator 1.1.12
log "[3/5] replacing vendored reflect2 and json-iterator with Debian's 1.0.2 / 1.1.12"
GOCODE=/usr/share/gocode/src/github.com
for d in modern-go/reflect2 json-iterator/go; do
  [[ -d $GOCODE/$d ]] || die "$GOCODE/$d missing (Debian packages golang-github-modern-go-reflect2-dev, golang-github-json-iterator-go-dev)"
  rm -rf "$TREE/vendor/github.com/$d"
  cp -rL "$GOCODE/$d" "$TREE/vendor/github.com/$d"
  rm -f "$TREE/vendor/github.com/$d/go.mod" "$TREE/vendor/github.com/$d/go.sum"
done

export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0
export GOCACHE=$KDIR/go-build-cache
mkdir -p "$GOCACHE"
cd "$TREE"

# go build -v prints one line per compiled package; show a line every 100 so minutes pass visibly.
progress() {
  local what=$1 n=0 line
  while IFS= read -r line; do
    n=$((n + 1))
    echo "$line" >>"$BUILD/$what.log"
    if ((n % 100 == 0)); then log "      $what: $n packages compiled ($(elapsed))"; fi
  done
}

# --- 4. Fix 2: generate pkg/generated/openapi/zz_generated.openapi.go (upstream's make does it) ---
log "[4/5] generating OpenAPI definitions with the vendored openapi-gen"
go build -v -o "$BUILD/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen 2>&1 | progress openapi-gen
[[ -x $BUILD/openapi-gen ]] || die "building openapi-gen failed (see output above)"
# Same discovery as build/root/Makefile.generated_files: every Go package with a +k8s:openapi-gen=
# tag, staging packages named through vendor/, without code-generator and sample-apiserver.
INPUTS=$(
  find -H . \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune -o -type f -name '*.go' -print0 |
    { xargs -0 grep -l --null '^// *+k8s:' || true; } |
    { xargs -0 grep -l --null '+k8s:openapi-gen=' || true; } |
    xargs -0 -n1 dirname | sed -e 's|^\./||' -e 's|^staging/src/|vendor/|' |
    grep -v -e '^vendor/k8s.io/code-generator' -e 'sample-apiserver' |
    sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -
)
[[ -n $INPUTS ]] || die "found no package tagged +k8s:openapi-gen="
log "      $(tr ',' '\n' <<<"$INPUTS" | wc -l) input packages"
"$BUILD/openapi-gen" \
  --input-dirs "$INPUTS" \
  --output-package k8s.io/kubernetes/pkg/generated/openapi \
  --output-file-base zz_generated.openapi \
  --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
  --report-filename "$BUILD/openapi-report.list" \
  --output-base "$GOPATH/src" >"$BUILD/openapi-gen.run.log" 2>&1 || {
  tail -n 30 "$BUILD/openapi-gen.run.log" >&2
  die "openapi-gen failed"
}
[[ -s pkg/generated/openapi/zz_generated.openapi.go ]] || die "openapi-gen produced no zz_generated.openapi.go"
if ! diff -q <(sort "$BUILD/openapi-report.list") <(sort api/api-rules/violation_exceptions.list) >/dev/null; then
  log "      warning: openapi-gen's API-rule report differs from api/api-rules/violation_exceptions.list"
fi
log "      generated pkg/generated/openapi/zz_generated.openapi.go ($(elapsed))"

# --- 5. Build the three binaries in GOPATH mode with the version stamped in ----------------------
BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR -X $pkg.gitMinor=$K8S_MINOR"
  LDFLAGS+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$BUILD_DATE"
done
log "[5/5] building ${BINARIES[*]} (GOPATH mode, $(nproc) cores; cold ~5 min)"
mkdir -p "$BUILD/out"
targets=()
for b in "${BINARIES[@]}"; do targets+=("./cmd/$b"); done
# The build directory is part of the Go cache keys: it is the same path on every run, so a
# rebuild hits the cache and mostly relinks.
go build -v -tags selinux,notest -ldflags "$LDFLAGS" -o "$BUILD/out/" "${targets[@]}" 2>&1 | progress go-build
for b in "${BINARIES[@]}"; do
  [[ -x $BUILD/out/$b ]] || {
    tail -n 30 "$BUILD/go-build.log" >&2
    die "go build did not produce $b"
  }
done

ver=$("$BUILD/out/kube-apiserver" --version 2>&1 || true)
[[ $ver == "Kubernetes $K8S_VERSION" ]] || die "kube-apiserver --version says '$ver', expected 'Kubernetes $K8S_VERSION'"

mkdir -p "$BIN_DIR"
rm -f "$STAMP"
for b in "${BINARIES[@]}"; do
  mv -f "$BUILD/out/$b" "$BIN_DIR/$b.tmp"
  mv -f "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
done
echo "$STAMP_TEXT" >"$STAMP"
cd /
log "Kubernetes $K8S_VERSION built into $BIN_DIR in $(elapsed) (Go cache: $GOCACHE, $(du -sh "$GOCACHE" | cut -f1))"
