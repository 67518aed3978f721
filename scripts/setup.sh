#!/usr/bin/env bash
# Installs what vitte-scheduler needs from Debian 12's packages. Idempotent: when every
# package is already there it only checks (about a second) and touches nothing.
set -euo pipefail

packages=(
  g++ make meson ninja-build pkg-config cmake python3 python3-matplotlib
  libtbb-dev libtbbbind-2-5 libhwloc-dev hwloc-nox libjemalloc-dev libpapi-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libasio-dev
  libopenmpi-dev openmpi-bin libcereal-dev
  qemu-system-x86 busybox-static util-linux
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: need root to install packages (run as root, or install: ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
