#!/usr/bin/env bash
# Builds (once) and caches a Debian bookworm arm64 root for smoke-testing the aarch64 wheel under
# qemu user-mode emulation. Usage: wheels/arm64_root.sh [ROOT]   (default wheels/work/arm64-root)
#
# Rules:
# - Idempotent: a finished root carries a stamp file and is reused as is, so reruns cost nothing.
# - Two stages, as on a real foreign bootstrap: `debootstrap --foreign` unpacks the arm64 packages
#   on the host, then `/debootstrap/debootstrap --second-stage` runs the arm64 maintainer scripts
#   inside the chroot, through qemu-aarch64-static registered with binfmt_misc.
# - Needs root (chroot, mount) and the host packages qemu-user-static binfmt-support debootstrap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${1:-$here/work/arm64-root}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
stamp="$root/.fastgw-root-ready"
# python3-venv: the smoke test installs the wheel into a venv, never into the root's system python
pkgs=python3,python3-venv,python3-pip,ca-certificates,curl

log() { printf '[arm64-root] %s\n' "$*" >&2; }

ensure_binfmt() {
  # The second stage and every arm64 process in the root exec aarch64 ELF files: the kernel
  # hands them to qemu only when binfmt_misc has a qemu-aarch64 entry.
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 || update-binfmts --import qemu-aarch64
  fi
  grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64
}

host_packages() {
  local need=()
  command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
  command -v update-binfmts >/dev/null || need+=(binfmt-support)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  fi
}

host_packages
ensure_binfmt

if [ -e "$stamp" ]; then
  log "reusing $root"
  exit 0
fi

if [ ! -e "$root/debootstrap/debootstrap" ] && [ ! -e "$root/usr/bin/python3" ]; then
  log "first stage into $root (downloads ~60 MB of arm64 packages)"
  # never delete a root that still has the host's /dev or /proc bound into it
  if grep -q " $root/" /proc/self/mounts; then
    echo "arm64-root: $root has mounts inside; unmount them first" >&2
    exit 1
  fi
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$pkgs" bookworm "$root" "$mirror"
fi

if [ -e "$root/debootstrap/debootstrap" ]; then
  # qemu-user-static's binfmt entry has the F flag (interpreter opened at registration), so the
  # chroot needs no copy of qemu; copy it anyway for kernels/binfmt setups without F.
  cp /usr/bin/qemu-aarch64-static "$root/usr/bin/"
  log "second stage under qemu (slow: runs every arm64 maintainer script emulated)"
  chroot "$root" /debootstrap/debootstrap --second-stage
fi

# name resolution for pip inside the root
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /usr/bin/python3 -c 'import platform, sys; assert platform.machine() == "aarch64", platform.machine(); print("arm64 root python", sys.version.split()[0], platform.machine())'
touch "$stamp"
log "ready: $root"
