#!/usr/bin/env bash
# The VM lab: boots a Debian kernel under QEMU (TCG) with a virtual IOMMU and
# QEMU's igb SR-IOV NIC, and runs test binaries inside it against the real
# vfio-pci, igb PF and igbvf drivers. Exits 0 only if every binary passed.
#
#   scripts/vmlab/run.sh                 build (scripts/vmlab/build-tests.sh)
#                                        and run every lab_* test binary
#   scripts/vmlab/run.sh BINARY...       run these binaries, in order
#
# Runs as root on Debian bookworm. Installs what it needs with apt (QEMU >= 8
# from bookworm-backports, busybox-static, kmod, cpio, xz-utils, jq, iproute2) and
# caches the guest kernel under $VMLAB_DIR, so a second run uses no network.
# Env (see scripts/vmlab/README.md):
#   VMLAB_DIR (/var/tmp/fastpath-vmlab)  VMLAB_TIMEOUT (300, seconds for the boot)
#   VMLAB_MEM (1024 MiB)  VMLAB_SMP (1)  VMLAB_HUGEPAGES (64)  VMLAB_NUMVFS (3)
#   VMLAB_TOOLS (with BINARY...: extra binaries for the guest's /bin, e.g. fastpath)
#   VMLAB_TEST_TIMEOUT (0 = none; seconds per binary inside the guest)
#   VMLAB_QUIET=1 (do not stream the console)  VMLAB_APT_TIMEOUT (900)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${VMLAB_DIR:-/var/tmp/fastpath-vmlab}
BUDGET=${VMLAB_TIMEOUT:-300}
MEM=${VMLAB_MEM:-1024}
SMP=${VMLAB_SMP:-1}
HUGEPAGES=${VMLAB_HUGEPAGES:-64}
NUMVFS=${VMLAB_NUMVFS:-3}
TEST_TIMEOUT=${VMLAB_TEST_TIMEOUT:-0}
APT_TIMEOUT=${VMLAB_APT_TIMEOUT:-900}
# Kernel modules the guest loads, with their dependencies resolved on the host.
MODULES=(igb igbvf vfio vfio_iommu_type1 vfio-pci)

T0=$EPOCHSECONDS
say() { printf 'vmlab: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 2
}
elapsed() { echo "$((EPOCHSECONDS - T0)) s"; }

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, depmod and the guest image need it)"
for v in BUDGET MEM SMP HUGEPAGES NUMVFS TEST_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
((NUMVFS >= 3)) || die "VMLAB_NUMVFS must be at least 3 (VF0 and VF2 for vfio-pci, VF1 for igbvf)"

mkdir -p "$WORK"
exec 9>"$WORK/lock"
flock -w 600 9 || die "another vmlab run holds $WORK/lock"

# ---------------------------------------------------------------- host packages
export DEBIAN_FRONTEND=noninteractive
APT=(timeout "$APT_TIMEOUT" apt-get -q -o DPkg::Lock::Timeout=600)
apt_updated=
apt_update() {
    if [[ -z $apt_updated ]]; then
        say "apt-get update"
        "${APT[@]}" update >/dev/null
        apt_updated=1
    fi
}

# The major version of the QEMU on PATH, or 0.
qemu_major() {
    local v
    v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p')
    echo "${v:-0}"
}

install_qemu() {
    (($(qemu_major) >= 8)) && return
    apt_update
    local candidate suite codename
    candidate=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
    if [[ $candidate =~ ^([0-9]+:)?([0-9]+)\. ]] && ((BASH_REMATCH[2] >= 8)); then
        say "installing qemu-system-x86 $candidate"
        "${APT[@]}" install -y --no-install-recommends qemu-system-x86 >/dev/null
    else
        # bookworm has 7.2, which has no igb NIC model; backports has 10.x.
        codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release)
        [[ -n $codename ]] || die "cannot tell the Debian release from /etc/os-release"
        suite=$codename-backports
        if ! grep -rqsE "^[^#]*$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            say "adding $suite to /etc/apt/sources.list.d/$suite.list"
            echo "deb http://deb.debian.org/debian $suite main" >"/etc/apt/sources.list.d/$suite.list"
            apt_updated=
            apt_update
        fi
        say "installing qemu-system-x86 from $suite (the $codename candidate ${candidate:-none} is older than 8)"
        "${APT[@]}" install -y --no-install-recommends -t "$suite" qemu-system-x86 >/dev/null
    fi
    (($(qemu_major) >= 8)) || die "QEMU >= 8 is needed for the igb NIC; have: $(qemu-system-x86_64 --version 2>&1 | head -1)"
}

# The host's iproute2 `ip` (busybox's lacks `ip link set PF vf N mac ...`).
host_ip() {
    local p
    for p in /usr/sbin/ip /sbin/ip /bin/ip; do
        if [[ -x $p ]] && ! [[ $(readlink -f "$p") == */busybox ]]; then
            echo "$p"
            return
        fi
    done
}

install_tools() {
    local need=()
    [[ -x /bin/busybox ]] && dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
    command -v depmod >/dev/null || need+=(kmod)
    command -v cpio >/dev/null || need+=(cpio)
    command -v xz >/dev/null || need+=(xz-utils)
    command -v jq >/dev/null || need+=(jq)
    # The host's iproute2 `ip` goes into the guest as /usr/sbin/ip-full.
    [[ -x $(host_ip) ]] || need+=(iproute2)
    if ((${#need[@]})); then
        apt_update
        say "installing ${need[*]}"
        "${APT[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null
    fi
}

install_qemu
install_tools
qemu-system-x86_64 -device igb,help >/dev/null 2>&1 ||
    die "$(qemu-system-x86_64 --version | head -1) has no igb device"
say "host ready ($(qemu-system-x86_64 --version | head -1)), $(elapsed)"

# ----------------------------------------------------------------- guest kernel
# $WORK/kernel/<package>/ holds vmlinux (uncompressed ELF: QEMU boots it
# through PVH, which skips about 10 s of XZ decompression under TCG), the
# modules and modules.list; .ready marks a complete extraction.
prepare_kernel() {
    local kdir
    if [[ -e $WORK/kernel/current/.ready ]]; then
        KDIR=$(readlink -f "$WORK/kernel/current")
        return
    fi
    apt_update
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [[ -n $pkg ]] || die "cannot resolve linux-image-amd64 to a kernel package"
    kdir=$WORK/kernel/$pkg
    say "fetching $pkg"
    rm -rf "$kdir" "$WORK/debs"
    mkdir -p "$kdir" "$WORK/debs"
    # apt-get download runs as the _apt user when it can.
    chmod 777 "$WORK/debs"
    (cd "$WORK/debs" && "${APT[@]}" download "$pkg" >/dev/null) || die "apt-get download $pkg failed"
    local debs=("$WORK/debs/${pkg}"_*.deb)
    [[ -f ${debs[0]} ]] || die "apt-get download $pkg gave no .deb"
    local deb=${debs[0]}
    dpkg-deb -x "$deb" "$kdir/root"
    rm -rf "$WORK/debs"
    local kver
    kver=$(ls "$kdir/root/lib/modules")
    depmod -b "$kdir/root" "$kver"
    # The bzImage holds an XZ stream; its payload is the ELF vmlinux.
    local vmlinuz=$kdir/root/boot/vmlinuz-$kver off
    off=$(LC_ALL=C grep -abo -m1 -P '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
    [[ -n $off ]] || die "no XZ stream in $vmlinuz"
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$kdir/vmlinux" 2>/dev/null || true
    [[ $(head -c 4 "$kdir/vmlinux" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] ||
        die "could not extract an ELF vmlinux from $vmlinuz"
    # Modules with their dependencies, in load order, without duplicates.
    local m
    for m in "${MODULES[@]}"; do
        modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
    done | awk '!seen[$0]++' | sed "s#^$kdir/root##" >"$kdir/modules.list"
    # Keep only what the guest needs.
    mkdir -p "$kdir/modules"
    while read -r m; do
        mkdir -p "$kdir/modules$(dirname "$m")"
        cp "$kdir/root$m" "$kdir/modules$m"
    done <"$kdir/modules.list"
    echo "$kver" >"$kdir/kver"
    rm -rf "$kdir/root"
    touch "$kdir/.ready"
    ln -sfn "$pkg" "$WORK/kernel/current"
    KDIR=$kdir
}
KDIR=
prepare_kernel
say "guest kernel $(cat "$KDIR/kver"), $(wc -l <"$KDIR/modules.list") modules, $(elapsed)"

# ------------------------------------------------------------- test binaries
BINS=("$@")
# Binaries the tests run (not tests themselves): they go to the guest's /bin.
read -r -a TOOLS <<<"${VMLAB_TOOLS:-}"
if ((${#BINS[@]} == 0)); then
    say "building the lab_* test binaries and the fastpath binary (scripts/vmlab/build-tests.sh)"
    mapfile -t built < <("$HERE/build-tests.sh" --with-tools)
    for b in "${built[@]}"; do
        if [[ $b == "tool "* ]]; then TOOLS+=("${b#tool }"); else BINS+=("$b"); fi
    done
    ((${#BINS[@]})) || die "build-tests.sh gave no binaries"
    say "built ${#BINS[@]} test binaries and ${#TOOLS[@]} tools, $(elapsed)"
fi

# --------------------------------------------------------------- initramfs
ROOT=$WORK/initrd
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,tmp,lab/bin}
cp /bin/busybox "$ROOT/bin/busybox"
for applet in $("$ROOT/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$ROOT/bin/$applet"
done
cp -r "$KDIR/modules/." "$ROOT/"
cp "$KDIR/modules.list" "$ROOT/lab/modules.list"
install -m 755 "$HERE/init.sh" "$ROOT/init"

# A dynamically linked binary gets its shared libraries and loader copied in
# at their host paths (build-tests.sh makes static ones, which need none).
copy_libs() {
    local lib
    for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+'); do
        [[ -e $ROOT$lib ]] && continue
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
}

# The full iproute2 `ip` for tests that need more than busybox's (VF admin
# MAC): FASTPATH_LAB_IP in the guest.
HOST_IP=$(host_ip)
[[ -n $HOST_IP ]] || die "no iproute2 ip on the host"
mkdir -p "$ROOT/usr/sbin"
install -m 755 "$(readlink -f "$HOST_IP")" "$ROOT/usr/sbin/ip-full"
copy_libs "$HOST_IP"

for tool in "${TOOLS[@]}"; do
    [[ -f $tool && -x $tool ]] || die "not an executable file: $tool"
    install -m 755 "$tool" "$ROOT/bin/$(basename "$tool")"
    copy_libs "$tool"
done

declare -A seen_names=()
NAMES=()
: >"$ROOT/lab/tests.list"
for bin in "${BINS[@]}"; do
    [[ -f $bin && -x $bin ]] || die "not an executable file: $bin"
    # lab_smoke-0b5999635277644a -> lab_smoke (cargo's hash suffix)
    name=$(basename "$bin")
    name=${name%-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]}
    name=${name//[^A-Za-z0-9_.-]/_}
    if [[ -n ${seen_names[$name]:-} ]]; then
        name=$name.${#NAMES[@]}
    fi
    seen_names[$name]=1
    NAMES+=("$name")
    cp "$bin" "$ROOT/lab/bin/$name"
    copy_libs "$bin"
    # A Rust test harness binary knows --test-threads.
    rust=0
    grep -qa -- '--test-threads' "$bin" && rust=1
    echo "$name $rust /lab/bin/$name" >>"$ROOT/lab/tests.list"
done
INITRD=$WORK/initramfs.cpio.gz
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1 >"$INITRD")
say "initramfs $(du -h "$INITRD" | cut -f1) with ${#NAMES[@]} binaries: ${NAMES[*]}, $(elapsed)"

# ------------------------------------------------------------------- boot
LOG=$WORK/console.log
QEMU_PID=
TAIL_PID=
cleanup() {
    if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
        say "stopping QEMU"
        # timeout passes the signal on to QEMU.
        kill -TERM "$QEMU_PID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$QEMU_PID" 2>/dev/null || break
            sleep 0.5
        done
        # Still there: kill QEMU (the child of timeout), then timeout.
        pkill -KILL -P "$QEMU_PID" 2>/dev/null || true
        kill -KILL "$QEMU_PID" 2>/dev/null || true
    fi
    if [[ -n $TAIL_PID ]]; then kill "$TAIL_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

APPEND="console=ttyS0 loglevel=4 intel_iommu=on iommu=pt panic=-1"
APPEND+=" lab_hugepages=$HUGEPAGES lab_numvfs=$NUMVFS lab_test_timeout=$TEST_TIMEOUT"
# shellcheck disable=SC2054 # the commas are QEMU's
QEMU=(qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m "$MEM"
    -machine q35,kernel-irqchip=split
    -device intel-iommu,intremap=on,caching-mode=on
    # restrict=on: the guest's slirp network reaches nothing outside.
    -netdev user,id=n0,restrict=on
    -device pcie-root-port,id=rp1,chassis=1
    -device igb,bus=rp1,netdev=n0,romfile=
    -kernel "$KDIR/vmlinux" -initrd "$INITRD" -append "$APPEND"
    -display none -monitor none -serial stdio -no-reboot)
say "booting (budget ${BUDGET} s, console in $LOG)"
BOOT_T0=$EPOCHSECONDS
timeout --kill-after=10 "$BUDGET" "${QEMU[@]}" </dev/null >"$LOG" 2>&1 &
QEMU_PID=$!
if [[ -z ${VMLAB_QUIET:-} ]]; then
    tail -s 0.2 -n +1 -f --pid="$QEMU_PID" "$LOG" | tr -d '\r' >&2 &
    TAIL_PID=$!
fi
qrc=0
wait "$QEMU_PID" || qrc=$?
QEMU_PID=
if [[ -n $TAIL_PID ]]; then
    wait "$TAIL_PID" 2>/dev/null || true
    TAIL_PID=
fi
BOOT_S=$((EPOCHSECONDS - BOOT_T0))

# ------------------------------------------------------------------ verdict
console=$(tr -d '\r' <"$LOG")
problems=()
if ((qrc == 124 || qrc == 137)); then
    problems+=("TIMEOUT: the guest did not power off within ${BUDGET} s (VMLAB_TIMEOUT); see the console above and $LOG")
elif ((qrc != 0)); then
    problems+=("QEMU exited with status $qrc (see $LOG)")
fi
setup_line=$(grep -o 'LAB-SETUP .*' <<<"$console" | head -1 || true)
[[ -n $setup_line ]] || problems+=("the guest never reported LAB-SETUP (no /init output?)")
[[ $setup_line == "LAB-SETUP FAILED"* ]] && problems+=("guest ${setup_line#LAB-}")

printf '\n== VM lab results (%s)\n' "${setup_line:-no setup line}"
npass=0
for name in "${NAMES[@]}"; do
    rc=$(sed -n "s/.*LAB-RESULT name=${name//./\\.} rc=\([0-9]*\).*/\1/p" <<<"$console" | head -1)
    if [[ -z $rc ]] && grep -q "LAB-RUN name=${name//./\\.} " <<<"$console"; then
        echo "  HUNG     $name (started, never finished)"
        problems+=("$name started but never finished")
    elif [[ -z $rc ]]; then
        echo "  NOT RUN  $name"
        problems+=("$name: no LAB-RESULT")
    elif ((rc == 0)); then
        echo "  PASS     $name"
        npass=$((npass + 1))
    else
        echo "  FAIL     $name (rc=$rc)"
        problems+=("$name exited with rc=$rc")
    fi
done
summary=$(grep -o 'LAB-SUMMARY .*' <<<"$console" | tail -1 || true)
if [[ -z $summary ]]; then
    problems+=("no LAB-SUMMARY line from the guest")
elif [[ $summary != "LAB-SUMMARY passed=${#NAMES[@]} failed=0"* ]]; then
    problems+=("guest summary: $summary")
fi
echo "${summary:-LAB-SUMMARY missing}"
echo "vmlab: $npass of ${#NAMES[@]} binaries passed; boot ${BOOT_S} s, total $(elapsed); console log $LOG"
if ((${#problems[@]})); then
    if [[ -n ${VMLAB_QUIET:-} ]]; then
        echo "-- last console lines:"
        tail -n 20 <<<"$console" | sed 's/^/   | /'
    fi
    for p in "${problems[@]}"; do echo "vmlab: FAIL: $p"; done
    exit 1
fi
echo "vmlab: PASS"
