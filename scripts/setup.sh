#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) to build and test graphdriver, and is safe to run again:
# Debian packages the drivers and tests use, pnpm, the workspace's dependencies, the native addon and
# the TypeScript build. Everything comes from Debian's archive and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
APT_PACKAGES=(
  # native addon build
  cmake ninja-build g++ make python3
  # filesystems and tools the drivers and their tests use
  util-linux mount e2fsprogs xfsprogs btrfs-progs fuse3 fuse-overlayfs attr tar xz-utils
  # reference tools the tests compare our output with: Go's archive/tar (what moby writes)
  golang-go
  # real image producers and consumers for the graphdriver command's interop tests (no network)
  skopeo umoci
  # the qemu lane: a Debian kernel with project quotas and dm-thin for the tests this host kernel cannot run
  qemu-system-x86
)

log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "graphdriver mounts filesystems and creates device nodes: run this as root"
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  log "installing pnpm $PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
fi

log "installing the workspace's dependencies (builds the native addon)"
pnpm install --frozen-lockfile --reporter=append-only >/dev/null

log "building"
pnpm --silent build >/dev/null
log "ready"
