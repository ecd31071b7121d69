# Shared shell helpers for Shoal's scripts. Source it; do not run it.

log() { printf '\033[1;34m[shoal]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[shoal] error:\033[0m %s\n' "$*" >&2; exit 1; }

APT_UPDATED=${APT_UPDATED:-0}

# apt_install PKG... — installs the Debian packages that are missing. Needs root; without it,
# stops with the exact command a human should run.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    die "missing Debian packages: ${missing[*]}. Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    apt-get update -q >/dev/null
    export APT_UPDATED=1
  fi
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# npm_deps — installs npm dependencies from the lock file when node_modules is missing or stale.
npm_deps() {
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "installing npm dependencies"
    npm ci --no-audit --no-fund >/dev/null
  fi
}
