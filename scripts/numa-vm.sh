#!/usr/bin/env bash
# Proves NUMA behaviour on a real multi-node Linux kernel: boots small QEMU guests (software
# emulation) with several NUMA nodes and runs tests/numa/numa_guest inside each; the guest
# asks its kernel where workers run (sched_getcpu, affinity masks) and where pages lie
# (move_pages).
#   scripts/numa-vm.sh [BUILD_DIR]     (default: build; needs numa_guest built there)
# Prints "numa-vm: N passed, M failed" over all guest shapes. Exits 0 when all passed, 77
# with a clear message when QEMU cannot start here, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
guest_bin=$build/tests/numa_guest
cache=.vitte-cache/numa-vm
mkdir -p "$cache"

skip() { echo "numa-vm: SKIPPED: $*"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (scripts/setup.sh installs it)"
[ -x /bin/busybox ] || skip "busybox-static is not installed"
[ -x "$guest_bin" ] || { echo "numa-vm: $guest_bin is missing (build first)"; exit 1; }

# A Debian kernel image, unpacked (not installed): no initramfs of the host is needed.
if [ ! -f "$cache/vmlinuz" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$pkg" ] || skip "no Debian kernel package found (apt-get update?)"
  (cd "$cache" && apt-get download -qq "$pkg" >/dev/null 2>&1) || skip "could not download $pkg"
  dpkg -x "$cache"/"$pkg"_*.deb "$cache/unpacked" && cp "$cache"/unpacked/boot/vmlinuz-* "$cache/vmlinuz" ||
    skip "could not unpack $pkg"
  rm -rf "$cache/unpacked" "$cache"/*.deb
fi

# The initramfs: busybox, the guest suite, every library it needs (the loader too), /init.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp}
cp /bin/busybox "$root/bin/"
for a in sh mount poweroff echo cat; do ln -s busybox "$root/bin/$a"; done
cp "$guest_bin" "$root/numa_guest"
LD_LIBRARY_PATH="$build/src" ldd "$guest_bin" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# oneTBB loads its hwloc binding (libtbbbind) with dlopen, from libtbb's own folder, so ldd
# does not list it: copy it beside libtbb when the host has it, with what it needs.
tbb=$(LD_LIBRARY_PATH="$build/src" ldd "$guest_bin" | awk '/libtbb\.so/{print $3; exit}')
for bind in "$(dirname "${tbb:-/nonexistent}")"/libtbbbind_2_5.so.3; do
  [ -f "$bind" ] || continue
  cp -L "$bind" "$root$(dirname "$tbb")/"
  ldd "$bind" | awk '/=> \//{print $3}' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    [ -f "$root$lib" ] || cp -L "$lib" "$root$lib"
  done
done
mkdir -p "$root/usr/local/lib"
cp -L "$build"/src/libvitte-scheduler.so* "$root/usr/local/lib/" 2>/dev/null
cat > "$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo VITTE-NUMA-BEGIN
LD_LIBRARY_PATH=/usr/local/lib /numa_guest
echo "VITTE-NUMA-END rc=$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$cache/initrd.gz"

passed=0
failed=0
boot() {  # name, then qemu -smp/-numa arguments
  local name=$1
  shift
  local log="$cache/$name.log"
  echo "=== guest $name"
  # No "quiet": the kernel's boot messages stay in the log, so a guest that hangs before
  # the suite starts (once in a run on 2026-11-25: nothing after the BIOS for 300 s) shows
  # where it stopped.
  timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 2G "$@" \
    -kernel "$cache/vmlinuz" -initrd "$cache/initrd.gz" \
    -append "console=ttyS0 panic=-1" -nographic -no-reboot >"$log" 2>&1
  local qrc=$?
  if ! grep -q VITTE-NUMA-BEGIN "$log"; then
    if [ "$name" = "2x2" ] && [ $qrc -ne 124 ]; then skip "the guest did not start (qemu exit $qrc; see $log)"; fi
    echo "numa-vm: guest $name produced no output (qemu exit $qrc; see $log)"
    failed=$((failed + 1))
    return
  fi
  sed -n '/VITTE-NUMA-BEGIN/,/VITTE-NUMA-END/p' "$log" | tr -d '\r' | grep -vE '^\s*$'
  local p f
  p=$(tr -d '\r' <"$log" | grep -c '^PASS ')
  f=$(tr -d '\r' <"$log" | grep -c '^FAIL ')
  passed=$((passed + p))
  failed=$((failed + f))
  tr -d '\r' <"$log" | grep -q 'VITTE-NUMA-END rc=0' || { [ "$f" -gt 0 ] || failed=$((failed + 1)); }
}

mem2="-object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G"
boot 2x2 -smp 4,sockets=2,cores=2 $mem2 \
  -numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1 -numa dist,src=0,dst=1,val=21
mem4="-object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M"
mem4="$mem4 -object memory-backend-ram,id=m2,size=512M -object memory-backend-ram,id=m3,size=512M"
boot 4x1 -smp 4,sockets=4,cores=1 $mem4 \
  -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
  -numa node,nodeid=2,cpus=2,memdev=m2 -numa node,nodeid=3,cpus=3,memdev=m3 \
  -numa dist,src=0,dst=1,val=15 -numa dist,src=0,dst=2,val=20 -numa dist,src=0,dst=3,val=25 \
  -numa dist,src=1,dst=2,val=15 -numa dist,src=1,dst=3,val=20 -numa dist,src=2,dst=3,val=15

echo "numa-vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
