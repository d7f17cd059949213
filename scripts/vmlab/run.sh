#!/usr/bin/env bash
# The VM lab: boots a Debian kernel under QEMU (TCG) with QEMU's igb SR-IOV
# NIC and runs test binaries inside it against the real vfio-pci, igb PF and
# igbvf drivers, once per IOMMU mode: `type1` (q35 with a virtual IOMMU) and
# `noiommu` (no IOMMU; vfio.ko rebuilt with CONFIG_VFIO_NOIOMMU and loaded
# with enable_unsafe_noiommu_mode=1). Exits 0 only if every binary passed in
# every boot.
#
#   scripts/vmlab/run.sh                 build (scripts/vmlab/build-tests.sh)
#                                        and run every lab_* test binary
#   scripts/vmlab/run.sh BINARY...       run these binaries, in order
#
# Runs as root on Debian bookworm. Installs what it needs with apt (QEMU >= 8
# from bookworm-backports, busybox-static, kmod, cpio, xz-utils, jq, iproute2;
# for noiommu the guest kernel's headers, linux-source and make) and caches
# the guest kernel and the rebuilt vfio.ko under $VMLAB_DIR, so a second run
# uses no network. Each run keeps its console logs in $VMLAB_DIR/runs/<id>/.
# Env (see scripts/vmlab/README.md):
#   VMLAB_DIR (/var/tmp/fastpath-vmlab)  VMLAB_MODES ("type1 noiommu")
#   VMLAB_TIMEOUT (300, seconds for each boot)  VMLAB_KEEP_RUNS (20)
#   VMLAB_MEM (1024 MiB)  VMLAB_SMP (1)  VMLAB_HUGEPAGES (64)  VMLAB_NUMVFS (3)
#   VMLAB_TOOLS (with BINARY...: extra binaries for the guest's /bin, e.g. fastpath)
#   VMLAB_TEST_TIMEOUT (0 = none; seconds per binary inside the guest)
#   VMLAB_QUIET=1 (do not stream the console)  VMLAB_APT_TIMEOUT (900)
# The last line on stdout before the verdict is the tally of the lab's tests,
# `vmlab: tests: N passed, N failed, N skipped` (.ci/run adds it to its own).
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
KEEP_RUNS=${VMLAB_KEEP_RUNS:-20}
read -r -a MODES <<<"${VMLAB_MODES:-type1 noiommu}"
# Kernel modules the guest loads, with their dependencies resolved on the host.
# tun, tap, vhost_iotlb, vhost and vhost_net: the exception path's TAP and
# its vhost-net backend (drivers/tests/lab_exception_vhost.rs).
MODULES=(igb igbvf vfio vfio_iommu_type1 vfio-pci tun tap vhost_iotlb vhost vhost_net)

T0=$EPOCHSECONDS
say() { printf 'vmlab: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 2
}
elapsed() { echo "$((EPOCHSECONDS - T0)) s"; }

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, depmod and the guest image need it)"
for v in BUDGET MEM SMP HUGEPAGES NUMVFS TEST_TIMEOUT KEEP_RUNS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
((NUMVFS >= 3)) || die "VMLAB_NUMVFS must be at least 3 (VF0 and VF2 for vfio-pci, VF1 for igbvf)"
((KEEP_RUNS >= 1)) || die "VMLAB_KEEP_RUNS must be at least 1"
((${#MODES[@]})) || die "VMLAB_MODES is empty (type1, noiommu or both)"
for m in "${MODES[@]}"; do
    [[ $m == type1 || $m == noiommu ]] || die "VMLAB_MODES: unknown mode '$m' (type1, noiommu)"
done
has_mode() {
    local m
    for m in "${MODES[@]}"; do [[ $m == "$1" ]] && return 0; done
    return 1
}

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
    # A cached kernel whose modules were picked for another module list is
    # extracted again.
    if [[ -e $WORK/kernel/current/.ready &&
        $(cat "$WORK/kernel/current/modules.wanted" 2>/dev/null) == "${MODULES[*]}" ]]; then
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
    echo "${MODULES[*]}" >"$kdir/modules.wanted"
    rm -rf "$kdir/root"
    touch "$kdir/.ready"
    ln -sfn "$pkg" "$WORK/kernel/current"
    KDIR=$kdir
}
KDIR=
prepare_kernel
say "guest kernel $(cat "$KDIR/kver"), $(wc -l <"$KDIR/modules.list") modules, $(elapsed)"

# ------------------------------------------------- vfio.ko for no-IOMMU mode
# Debian builds vfio without CONFIG_VFIO_NOIOMMU. Only vfio.ko uses the
# option, and its exported symbols' CRCs do not change with it
# (reference/vmlab/noiommu), so vfio.ko alone is rebuilt out of tree from
# linux-source-X.Y at the guest kernel's exact Debian version, against that
# kernel's headers, and the stock vfio_iommu_type1, vfio-pci-core and
# vfio-pci load on top of it. Cached in $WORK/noiommu/<kver>-<debver>/.
NOIOMMU_KO=
prepare_noiommu() {
    local kver debver series dir src stock
    kver=$(cat "$KDIR/kver")
    # "Linux version 6.1.0-57-amd64 (...) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-...)"
    debver=$(LC_ALL=C grep -a -o -m1 'Linux version [^ ]* (.*' "$KDIR/vmlinux" | head -1 |
        sed -n 's/.* Debian \([^ ]*\) (.*/\1/p')
    [[ -n $debver ]] || die "cannot read the Debian version of the guest kernel from $KDIR/vmlinux"
    series=$(cut -d. -f1,2 <<<"$kver")
    dir=$WORK/noiommu/$kver-$debver
    if [[ -e $dir/.ready ]]; then
        NOIOMMU_KO=$dir/vfio.ko
        return
    fi
    local t=$EPOCHSECONDS need=() have
    have=$(dpkg-query -W -f '${Version}' "linux-source-$series" 2>/dev/null || true)
    [[ $have == "$debver" && -f /usr/src/linux-source-$series.tar.xz ]] || need+=("linux-source-$series=$debver")
    have=$(dpkg-query -W -f '${Version}' "linux-headers-$kver" 2>/dev/null || true)
    [[ $have == "$debver" && -d /usr/src/linux-headers-$kver ]] || need+=("linux-headers-$kver=$debver")
    command -v make >/dev/null || need+=(make)
    if ((${#need[@]})); then
        apt_update
        say "installing ${need[*]} (to build vfio.ko with CONFIG_VFIO_NOIOMMU)"
        "${APT[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null ||
            die "apt-get install ${need[*]} failed (if the archive has moved on to a newer kernel, delete $WORK/kernel to boot that one)"
    fi
    rm -rf "$dir"
    src=$dir/src
    mkdir -p "$src"
    tar -C "$src" -xJf "/usr/src/linux-source-$series.tar.xz" --strip-components=1 \
        --wildcards "linux-source-$series/drivers/vfio/*" ||
        die "cannot unpack drivers/vfio from /usr/src/linux-source-$series.tar.xz"
    # CONFIG_VFIO_NOIOMMU=y for Kbuild, -DCONFIG_VFIO_NOIOMMU=1 for the C
    # (the headers' autoconf.h says it is unset); the other vfio modules
    # (stock ones are used) are blanked out.
    if ! make -C "/usr/src/linux-headers-$kver" M="$src/drivers/vfio" -j"$(nproc)" \
        CONFIG_VFIO_NOIOMMU=y KCFLAGS=-DCONFIG_VFIO_NOIOMMU=1 CONFIG_VFIO_MDEV= \
        CONFIG_VFIO_PCI= CONFIG_VFIO_IOMMU_TYPE1= CONFIG_VFIO_VIRQFD= modules \
        >"$dir/build.log" 2>&1; then
        tail -n 20 "$dir/build.log" >&2
        die "building vfio.ko with CONFIG_VFIO_NOIOMMU failed (log: $dir/build.log)"
    fi
    stock=$KDIR/modules$(grep '/vfio\.ko$' "$KDIR/modules.list")
    [[ $(modinfo -F vermagic "$src/drivers/vfio/vfio.ko") == "$(modinfo -F vermagic "$stock")" ]] ||
        die "the rebuilt vfio.ko's vermagic differs from the guest's: $(modinfo -F vermagic "$src/drivers/vfio/vfio.ko")"
    modinfo -p "$src/drivers/vfio/vfio.ko" | grep -q '^enable_unsafe_noiommu_mode:' ||
        die "the rebuilt vfio.ko has no enable_unsafe_noiommu_mode parameter (log: $dir/build.log)"
    strip --strip-debug -o "$dir/vfio.ko" "$src/drivers/vfio/vfio.ko"
    rm -rf "$src"
    touch "$dir/.ready"
    say "built vfio.ko with CONFIG_VFIO_NOIOMMU for $kver ($debver) in $((EPOCHSECONDS - t)) s"
    NOIOMMU_KO=$dir/vfio.ko
}
if has_mode noiommu; then
    prepare_noiommu
    say "no-IOMMU vfio.ko: $NOIOMMU_KO, $(elapsed)"
fi

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
# One module list per mode, one module a line with its parameters:
# no-IOMMU mode loads the rebuilt vfio.ko in place of the stock one.
cp "$KDIR/modules.list" "$ROOT/lab/modules.type1.list"
if [[ -n $NOIOMMU_KO ]]; then
    mkdir -p "$ROOT/lab/noiommu"
    cp "$NOIOMMU_KO" "$ROOT/lab/noiommu/vfio.ko"
    sed 's#^.*/vfio\.ko$#/lab/noiommu/vfio.ko enable_unsafe_noiommu_mode=1#' \
        "$KDIR/modules.list" >"$ROOT/lab/modules.noiommu.list"
    grep -q '^/lab/noiommu/vfio.ko ' "$ROOT/lab/modules.noiommu.list" ||
        die "no vfio.ko in $KDIR/modules.list"
fi
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

# ------------------------------------------------------------------ run dir
# Every run keeps its console logs under its own name; the oldest runs
# beyond VMLAB_KEEP_RUNS are deleted. runs/latest points to the newest.
RUNS=$WORK/runs
RUN_ID=$(date +%Y%m%d-%H%M%S)-$$
RUN_DIR=$RUNS/$RUN_ID
mkdir -p "$RUN_DIR"
ln -sfn "$RUN_ID" "$RUNS/latest"
mapfile -t old_runs < <(find "$RUNS" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' -printf '%f\n' | sort)
for ((i = 0; i < ${#old_runs[@]} - KEEP_RUNS; i++)); do
    rm -rf "${RUNS:?}/${old_runs[i]}"
done

# ------------------------------------------------------------------- boot
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

# boot MODE: boots the guest in MODE; its console goes to
# $RUN_DIR/console-MODE.log, QEMU's status to QRC, the wall time to BOOT_S.
boot() {
    local mode=$1 append machine=q35 iommu=()
    LOG=$RUN_DIR/console-$mode.log
    # no_timer_check: the kernel's early check that the IO-APIC timer ticks
    # within a fixed delay loop fails when a loaded host slows TCG down,
    # and with interrupt remapping that is a panic ("timer doesn't work
    # through Interrupt-remapped IO-APIC"); QEMU's timer does work.
    append="console=ttyS0 loglevel=4 panic=-1 no_timer_check lab_iommu=$mode"
    append+=" lab_hugepages=$HUGEPAGES lab_numvfs=$NUMVFS lab_test_timeout=$TEST_TIMEOUT"
    if [[ $mode == type1 ]]; then
        append+=" intel_iommu=on iommu=pt"
        machine=q35,kernel-irqchip=split
        iommu=(-device intel-iommu,intremap=on,caching-mode=on)
    fi
    # shellcheck disable=SC2054 # the commas are QEMU's
    local qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m "$MEM"
        -machine "$machine" "${iommu[@]}"
        # restrict=on: the guest's slirp network reaches nothing outside.
        -netdev user,id=n0,restrict=on
        -device pcie-root-port,id=rp1,chassis=1
        -device igb,bus=rp1,netdev=n0,romfile=
        -kernel "$KDIR/vmlinux" -initrd "$INITRD" -append "$append"
        -display none -monitor none -serial stdio -no-reboot)
    say "booting in $mode mode (budget ${BUDGET} s, console in $LOG)"
    local t0=$EPOCHSECONDS
    # Created here, not by QEMU's redirection, which could come after tail
    # looks for it.
    : >"$LOG"
    timeout --kill-after=10 "$BUDGET" "${qemu[@]}" </dev/null >>"$LOG" 2>&1 &
    QEMU_PID=$!
    if [[ -z ${VMLAB_QUIET:-} ]]; then
        tail -s 0.2 -n +1 -f --pid="$QEMU_PID" "$LOG" | tr -d '\r' >&2 &
        TAIL_PID=$!
    fi
    QRC=0
    wait "$QEMU_PID" || QRC=$?
    QEMU_PID=
    if [[ -n $TAIL_PID ]]; then
        wait "$TAIL_PID" 2>/dev/null || true
        TAIL_PID=
    fi
    BOOT_S=$((EPOCHSECONDS - t0))
}

# segment CONSOLE NAME: what binary NAME printed (between its LAB-RUN and
# LAB-RESULT lines).
segment() {
    awk -v run="LAB-RUN name=$2 " -v res="LAB-RESULT name=$2 rc=" '
        index($0, run) == 1 { on = 1; next }
        on && index($0, res) == 1 { exit }
        on { print }' <<<"$1"
}

# excerpt SEGMENT: why a binary failed: each panic with the lines around it,
# and the list of failed tests; with no panic, the segment's last lines (a
# hang, a crash, a guest that died).
excerpt() {
    local out
    out=$(awk '
        { line[NR] = $0 }
        END {
            last = 0
            for (i = 1; i <= NR; i++) {
                if (line[i] !~ /panicked at/) continue
                from = i - 3; if (from <= last) from = last + 1; if (from < 1) from = 1
                if (from > last + 1 && last > 0) print "   | ..."
                for (j = from; j <= NR && j <= i + 30; j++) {
                    if (j > i && line[j] ~ /^(---- |failures:$|test result:|LAB-)/) break
                    if (line[j] ~ /^stack backtrace:/) { print "   | (stack backtrace: in the console log)"; last = j; break }
                    print "   | " line[j]
                    last = j
                }
                shown++
            }
            for (i = 1; i <= NR; i++) {
                if (line[i] == "failures:" && line[i + 1] ~ /^    /) {
                    print "   | failures:"
                    for (j = i + 1; j <= NR && line[j] ~ /^    /; j++) print "   | " line[j]
                }
            }
            if (!shown) exit 1
        }' <<<"$1") || out=$(tail -n 40 <<<"$1" | sed 's/^/   | /')
    head -n 300 <<<"$out"
}

RESULTS=()
PROBLEMS=()
T_PASSED=0
T_FAILED=0
T_SKIPPED=0
# verdict MODE: reads the boot's console; adds to RESULTS, PROBLEMS and the
# test tally, and prints each failure's excerpt to stderr.
verdict() {
    local mode=$1 console setup_line summary name rc seg counts p f sk npass=0
    console=$(tr -d '\r' <"$LOG")
    if ((QRC == 124 || QRC == 137)); then
        PROBLEMS+=("$mode: TIMEOUT: the guest did not power off within ${BUDGET} s (VMLAB_TIMEOUT); see $LOG")
    elif ((QRC != 0)); then
        PROBLEMS+=("$mode: QEMU exited with status $QRC (see $LOG)")
    fi
    setup_line=$(grep -o 'LAB-SETUP .*' <<<"$console" | head -1 || true)
    [[ -n $setup_line ]] || PROBLEMS+=("$mode: the guest never reported LAB-SETUP (no /init output?)")
    [[ $setup_line == "LAB-SETUP FAILED"* ]] && PROBLEMS+=("$mode: guest ${setup_line#LAB-}")
    RESULTS+=("== $mode: ${setup_line:-no setup line}")
    for name in "${NAMES[@]}"; do
        rc=$(sed -n "s/^LAB-RESULT name=${name//./\\.} rc=\([0-9]*\).*/\1/p" <<<"$console" | head -1)
        seg=$(segment "$console" "$name")
        # The binary's libtest tallies ("test result: ok. 4 passed; 0
        # failed; 1 ignored; ..."); a binary that gave none counts as one
        # test, failed unless it exited 0.
        counts=$(awk '/^test result:/ { n++; for (i = 1; i < NF; i++) {
                    if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i
                    if ($(i+1) ~ /^ignored/) s += $i } }
                  END { print n + 0, p + 0, f + 0, s + 0 }' <<<"$seg")
        read -r n p f sk <<<"$counts"
        if ((n == 0)); then
            p=0 f=1 sk=0
            [[ $rc == 0 ]] && p=1 f=0
        elif [[ $rc != 0 ]] && ((f == 0)); then
            f=1
        fi
        T_PASSED=$((T_PASSED + p)) T_FAILED=$((T_FAILED + f)) T_SKIPPED=$((T_SKIPPED + sk))
        if [[ -z $rc ]] && grep -q "^LAB-RUN name=${name//./\\.} " <<<"$console"; then
            RESULTS+=("  HUNG     $name (started, never finished)")
            PROBLEMS+=("$mode: $name started but never finished")
        elif [[ -z $rc ]]; then
            RESULTS+=("  NOT RUN  $name")
            PROBLEMS+=("$mode: $name: no LAB-RESULT")
            continue
        elif ((rc == 0)); then
            RESULTS+=("  PASS     $name ($p passed, $sk skipped)")
            npass=$((npass + 1))
            continue
        else
            RESULTS+=("  FAIL     $name (rc=$rc; $p passed, $f failed)")
            PROBLEMS+=("$mode: $name exited with rc=$rc")
        fi
        {
            echo "vmlab: ---- $name failed in the $mode boot; from $LOG:"
            excerpt "$seg"
        } >&2
    done
    summary=$(grep -o 'LAB-SUMMARY .*' <<<"$console" | tail -1 || true)
    if [[ -z $summary ]]; then
        PROBLEMS+=("$mode: no LAB-SUMMARY line from the guest")
        if [[ -n $setup_line ]]; then
            {
                echo "vmlab: ---- the $mode boot ended early; the last console lines of $LOG:"
                tail -n 30 <<<"$console" | sed 's/^/   | /'
            } >&2
        fi
    elif [[ $summary != "LAB-SUMMARY passed=${#NAMES[@]} failed=0"* ]]; then
        PROBLEMS+=("$mode: guest summary: $summary")
    fi
    RESULTS+=("  ${summary:-LAB-SUMMARY missing}" "  $npass of ${#NAMES[@]} binaries passed; boot ${BOOT_S} s")
    if [[ -z $setup_line || $setup_line == "LAB-SETUP FAILED"* ]]; then
        {
            echo "vmlab: ---- the $mode boot did not set up; the last console lines of $LOG:"
            tail -n 40 <<<"$console" | sed 's/^/   | /'
        } >&2
    fi
}

for mode in "${MODES[@]}"; do
    boot "$mode"
    verdict "$mode"
done

# ------------------------------------------------------------------ verdict
{
    echo
    printf '%s\n' "${RESULTS[@]}"
    echo "vmlab: run $RUN_ID: modes ${MODES[*]}; total $(elapsed); console logs in $RUN_DIR"
    echo "vmlab: tests: $T_PASSED passed, $T_FAILED failed, $T_SKIPPED skipped"
    if ((${#PROBLEMS[@]})); then
        for p in "${PROBLEMS[@]}"; do echo "vmlab: FAIL: $p"; done
    else
        echo "vmlab: PASS"
    fi
} | tee "$RUN_DIR/verdict.txt"
((${#PROBLEMS[@]} == 0)) || exit 1
