#!/usr/bin/env bash
# The vfio-user lab: a QEMU 11 guest whose PCI function is served by our
# own process over vfio-user (drivers::sim::vfio_user, the example binary
# vfio_user_server), driven by the guest's stock Debian ixgbevf.ko (or
# iavf.ko: VFU_LAB_MODEL below).
#
#   scripts/vfio-user-lab/run.sh
#
# Runs as root on Debian bookworm (debootstrap, chroot, bind mounts). Sets
# up, idempotently and cached under $VFU_LAB_DIR:
#   trixie/   a Debian trixie chroot with qemu-system-x86 from
#             trixie-backports (bookworm's QEMU has no vfio-user-pci)
#   share/    the guest kernel (Debian's linux-image-amd64: vmlinux,
#             ixgbevf.ko and iavf.ko), the initramfs, and per run the server's socket
#             and trace; bound into the chroot at the same path
#   runs/<id>/ console, trace and server log of each run
# The chroot's /dev, /proc, /sys and share/ are bind mounts made for the
# run and always unmounted on exit (never delete trixie/ while they are
# mounted: the delete would go through to the host's /dev).
# Env: VFU_LAB_DIR (/var/tmp/fastpath-vfio-user)  VFU_LAB_TIMEOUT (420,
#   seconds for the boot)  VFU_LAB_APT_TIMEOUT (900)  VFU_LAB_KEEP_RUNS (20)
#   VFU_LAB_ROUNDS (3)  VFU_LAB_FRAMES (10000)  VFU_LAB_MODEL (ixgbevf;
#   see the table below)  VFU_LAB_WAIT (seconds the guest waits for the
#   driver's netdev: 10, 6 for iavf-regfile)
# The last line on stdout is the tally,
# `vfio-user-lab: tests: N passed, N failed, N skipped`; exit 0 only if none
# failed, 1 if a check failed, 2 if the lab could not be set up.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB=${VFU_LAB_DIR:-/var/tmp/fastpath-vfio-user}
BUDGET=${VFU_LAB_TIMEOUT:-420}
ROUNDS=${VFU_LAB_ROUNDS:-3}
FRAMES=${VFU_LAB_FRAMES:-10000}
APT_TIMEOUT=${VFU_LAB_APT_TIMEOUT:-900}
KEEP_RUNS=${VFU_LAB_KEEP_RUNS:-20}
RUN=$LAB/share
T0=$EPOCHSECONDS

say() { printf 'vfio-user-lab: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 2
}
elapsed() { echo "$((EPOCHSECONDS - T0)) s"; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot and bind mounts need it)"
for v in BUDGET APT_TIMEOUT KEEP_RUNS ROUNDS FRAMES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done

# What is served, which guest driver takes it, and which checks judge the
# run. The server's MODEL argument is VFU_LAB_MODEL as is.
#   ixgbevf[:82599|x540|x550|x550em]  the ixgbevf model, frames with our PMD
#   regfile                           82599 VF over a register file (fails
#                                     the ixgbevf checks: shows they can)
#   iavf-regfile[:1889|154c]          iavf VF over a register file: Linux's
#                                     iavf sets up its admin queue and waits
#   iavf[:1889|154c]                  the iavf model (refused by the server
#                                     until drivers::sim::iavf exists)
MODEL=${VFU_LAB_MODEL:-ixgbevf}
WAIT=${VFU_LAB_WAIT:-10}
case $MODEL in
ixgbevf | ixgbevf:82599 | regfile) GUEST_ID=8086:10ed ;;
ixgbevf:x540) GUEST_ID=8086:1515 ;;
ixgbevf:x550) GUEST_ID=8086:1565 ;;
ixgbevf:x550em) GUEST_ID=8086:15a8 ;;
iavf-regfile | iavf-regfile:1889 | iavf | iavf:1889) GUEST_ID=8086:1889 ;;
iavf-regfile:154c | iavf:154c) GUEST_ID=8086:154c ;;
*) die "unknown VFU_LAB_MODEL '$MODEL'" ;;
esac
case $MODEL in
iavf-regfile*)
    GUEST_MODULE=iavf CHECKS=checks_iavf_regfile
    # Enough for three of the driver's 1.8 s admin-queue attempts.
    WAIT=${VFU_LAB_WAIT:-6}
    ;;
iavf*) GUEST_MODULE=iavf CHECKS=checks_iavf_model ;;
*) GUEST_MODULE=ixgbevf CHECKS=checks_ixgbevf ;;
esac
[[ $WAIT =~ ^[0-9]+$ ]] || die "VFU_LAB_WAIT must be a number, got '$WAIT'"
mkdir -p "$LAB" "$RUN"
exec 9>"$LAB/lock"
flock -w 600 9 || die "another run holds $LAB/lock"

export DEBIAN_FRONTEND=noninteractive
APT=(timeout "$APT_TIMEOUT" apt-get -q -o DPkg::Lock::Timeout=600)

# shellcheck source=chroot.sh
. "$HERE/chroot.sh"
SPID=
cleanup() {
    if [[ -n $SPID ]]; then
        kill "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
    fi
    chroot_umount
}
trap cleanup EXIT
trap 'exit 130' INT TERM

prepare_chroot
QEMU_VERSION=$(chroot "$ROOT" qemu-system-x86_64 --version | head -1)
chroot "$ROOT" qemu-system-x86_64 -device vfio-user-pci,help >/dev/null 2>&1 ||
    die "$QEMU_VERSION has no vfio-user-pci device"
say "chroot ready ($QEMU_VERSION), $(elapsed)"

# ----------------------------------------------------------------- guest kernel
# share/kernel/<package>/: vmlinux (uncompressed ELF, booted through PVH),
# each guest driver with what `modprobe --show-depends` lists, and per
# driver modules-<name>.list in load order; .ready marks a complete
# extraction. Same recipe as scripts/vmlab/run.sh, other modules. A cache
# made before a driver was added here lacks its list: it is fetched again
# and completed, never used without it.
MODULES=(ixgbevf iavf)
prepare_kernel() {
    if [[ -e $RUN/kernel/current/.ready ]]; then
        local m missing=()
        for m in "${MODULES[@]}"; do
            [[ -s $RUN/kernel/current/modules-$m.list ]] || missing+=("$m")
        done
        if ((${#missing[@]} == 0)); then
            KDIR=$(readlink -f "$RUN/kernel/current")
            return
        fi
        say "the cached guest kernel has no module list for ${missing[*]}: fetching it again"
    fi
    "${APT[@]}" update >/dev/null || die "apt-get update failed"
    local pkg kdir
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [[ -n $pkg ]] || die "cannot resolve linux-image-amd64 to a kernel package"
    kdir=$RUN/kernel/$pkg
    say "fetching $pkg"
    rm -rf "$kdir" "$LAB/debs"
    mkdir -p "$kdir" "$LAB/debs"
    chmod 777 "$LAB/debs" # apt-get download runs as _apt when it can
    (cd "$LAB/debs" && "${APT[@]}" download "$pkg" >/dev/null) || die "apt-get download $pkg failed"
    local debs=("$LAB/debs/${pkg}"_*.deb)
    [[ -f ${debs[0]} ]] || die "apt-get download $pkg gave no .deb"
    dpkg-deb -x "${debs[0]}" "$kdir/root"
    rm -rf "$LAB/debs"
    local kver vmlinuz off m
    kver=$(ls "$kdir/root/lib/modules")
    depmod -b "$kdir/root" "$kver"
    vmlinuz=$kdir/root/boot/vmlinuz-$kver
    off=$(LC_ALL=C grep -abo -m1 -P '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
    [[ -n $off ]] || die "no XZ stream in $vmlinuz"
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$kdir/vmlinux" 2>/dev/null || true
    [[ $(head -c 4 "$kdir/vmlinux" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] ||
        die "could not extract an ELF vmlinux from $vmlinuz"
    for m in "${MODULES[@]}"; do
        modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}' |
            sed "s#^$kdir/root##" >"$kdir/modules-$m.list"
        [[ -s $kdir/modules-$m.list ]] || die "no $m.ko in $pkg"
        while read -r f; do
            mkdir -p "$kdir/modules$(dirname "$f")"
            cp "$kdir/root$f" "$kdir/modules$f"
        done <"$kdir/modules-$m.list"
    done
    echo "$kver" >"$kdir/kver"
    rm -rf "$kdir/root"
    touch "$kdir/.ready"
    ln -sfn "$pkg" "$RUN/kernel/current"
    KDIR=$kdir
}
KDIR=
prepare_kernel
say "guest kernel $(cat "$KDIR/kver") ($(cd "$KDIR/modules" && find . -name '*.ko*' -printf '%f ')), $(elapsed)"

# ------------------------------------------------------------------ guest tool
# lab-frames, the guest's end of the frame exchange, linked static for the
# busybox initramfs (`file` tells a static binary; a fresh machine may
# lack it).
command -v file >/dev/null || "${APT[@]}" install -y file >/dev/null || die "apt-get install file failed"
say "building lab-frames (static)"
# shellcheck source=build-guest-tool.sh
. "$HERE/build-guest-tool.sh" --lib
GUEST_TOOL=$(build_guest_tool) || die "the static build of lab-frames failed"
say "lab-frames built, $(elapsed)"

# ------------------------------------------------------------------ initramfs
# Rebuilt every run (about a second): busybox, the modules, /init.
BUSYBOX=$(command -v busybox || true)
if [[ -z $BUSYBOX ]] || ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
    "${APT[@]}" install -y busybox-static >/dev/null || die "apt-get install busybox-static failed"
    BUSYBOX=$(command -v busybox)
fi
INITRD_DIR=$LAB/initrd
rm -rf "$INITRD_DIR"
mkdir -p "$INITRD_DIR"/{bin,sbin,proc,sys,dev,tmp,lab}
cp "$BUSYBOX" "$INITRD_DIR/bin/busybox"
for a in $("$INITRD_DIR/bin/busybox" --list); do
    [[ $a == busybox ]] || ln -sf busybox "$INITRD_DIR/bin/$a"
done
cp -a "$KDIR/modules/." "$INITRD_DIR/"
cp "$KDIR"/modules-*.list "$INITRD_DIR/lab/"
cp "$HERE/init.sh" "$INITRD_DIR/init"
chmod 755 "$INITRD_DIR/init"
cp "$GUEST_TOOL" "$INITRD_DIR/bin/lab-frames"
(cd "$INITRD_DIR" && find . | cpio -o -H newc --quiet | gzip -1 >"$RUN/initramfs.cpio.gz")

# ------------------------------------------------------------------ the server
say "building vfio_user_server"
(cd "$REPO" && cargo build -q -p drivers --features vfio-user --example vfio_user_server) ||
    die "cargo build of vfio_user_server failed"
SERVER=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug/examples/vfio_user_server
[[ -x $SERVER ]] || die "no $SERVER after the build"
say "server built, $(elapsed)"

# ------------------------------------------------------------------ the boot
ID=$(date -u +%Y%m%dT%H%M%SZ)-$$
OUT=$LAB/runs/$ID
mkdir -p "$OUT"
# Keep the newest runs only.
ls -1d "$LAB"/runs/*/ 2>/dev/null | head -n -"$KEEP_RUNS" | xargs -r rm -rf
SOCK=$RUN/vf0.sock
rm -f "$SOCK"
PEER=() GUEST_ROUNDS=0
# The frame exchange needs a model with a PF (not a register file).
if [[ $MODEL == ixgbevf* || $MODEL == iavf || $MODEL == iavf:* ]] && ((ROUNDS > 0)); then
    PEER=(--rounds "$ROUNDS" --count "$FRAMES")
    GUEST_ROUNDS=$ROUNDS
fi
"$SERVER" "$SOCK" "$OUT/trace.txt" "$MODEL" "${PEER[@]}" 2>"$OUT/server.log" &
SPID=$!
for _ in $(seq 100); do
    [[ -S $SOCK ]] && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.05
done
[[ -S $SOCK ]] || die "the server did not create $SOCK ($(cat "$OUT/server.log"))"

DEV="{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$SOCK\",\"type\":\"unix\"},\"bus\":\"rp1\",\"id\":\"vf0\"}"
say "booting (budget $BUDGET s)"
BOOT0=$EPOCHSECONDS
# share=on memfd guest RAM: QEMU passes its fds with DMA_MAP, so the server
# can reach guest memory (IOVA = guest physical address, no vIOMMU).
set +e
timeout --kill-after=5 "$BUDGET" chroot "$ROOT" qemu-system-x86_64 \
    -accel tcg -cpu max -smp 1 -m 512 \
    -object memory-backend-memfd,id=mem0,size=512M,share=on \
    -machine q35,memory-backend=mem0 \
    -device pcie-root-port,id=rp1,chassis=1 -device "$DEV" \
    -kernel "$KDIR/vmlinux" -initrd "$RUN/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=7 no_timer_check vfu.id=$GUEST_ID vfu.module=$GUEST_MODULE vfu.wait=$WAIT vfu.rounds=$GUEST_ROUNDS vfu.count=$FRAMES" \
    -nographic -no-reboot -nodefaults -serial stdio </dev/null >"$OUT/console.txt" 2>&1
QRC=$?
set -e
BOOT_S=$((EPOCHSECONDS - BOOT0))
tr -d '\r' <"$OUT/console.txt" >"$OUT/console.clean" && mv "$OUT/console.clean" "$OUT/console.txt"
# QEMU closed the socket: the server ends on its own; give it a moment.
for _ in $(seq 50); do
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
SRC=0
if kill -0 "$SPID" 2>/dev/null; then
    kill "$SPID"
    SRC=timeout
fi
wait "$SPID" || SRC=$?
[[ $SRC == timeout ]] && SRC="still running after QEMU exited"
SPID=
rm -f "$SOCK"
say "QEMU rc=$QRC after $BOOT_S s, server rc=$SRC; logs in $OUT"

# ------------------------------------------------------------------ verdict
# One function of checks per kind of run ($CHECKS, chosen with the model
# above); each check is one line of the tally.
PASSED=0 FAILED=0 SKIPPED=0
RESULTS=()
check() { # check <name> <what> <command...>
    local name=$1 what=$2
    shift 2
    if "$@"; then
        PASSED=$((PASSED + 1))
        RESULTS+=("  PASS     $name: $what")
    else
        FAILED=$((FAILED + 1))
        RESULTS+=("  FAIL     $name: $what")
    fi
}
skip() { # skip <name> <why>
    SKIPPED=$((SKIPPED + 1))
    RESULTS+=("  SKIP     $1: $2")
}
con() { grep -q "$@" "$OUT/console.txt"; }
tr_has() { grep -qE "$1" "$OUT/trace.txt" 2>/dev/null; }
# tr_count <regex>: how many trace lines match.
tr_count() { grep -cE "$1" "$OUT/trace.txt" 2>/dev/null || true; }
srv() { grep -qE "$1" "$OUT/server.log" 2>/dev/null; }
# srv_num <regex with one number group>: that number from the server log.
srv_num() { sed -nE "s/.*$1.*/\1/p" "$OUT/server.log" | head -1; }
VENDOR=0x${GUEST_ID%%:*} DEVICE=0x${GUEST_ID##*:}

# The function as the guest's PCI core sees it: what config space says,
# whoever answers the registers.
checks_function() {
    check guest-done "the guest ran /init to the end and QEMU exited 0" \
        eval '[[ $QRC == 0 ]] && con "^VFU-DONE"'
    # No end-of-line anchors: the guest prints every kernel message to the
    # console (printk 8), and one can land right after our text on the
    # same line ("VFU-DEV ... 0x020000[    2.093183] tsc: Refined TSC
    # ...", seen once in CI). A value is still matched whole: a space or
    # the end follows it, or the "[" of a kernel timestamp.
    check device-ids "the guest sees $GUEST_ID class 0x020000" \
        con -E "^VFU-DEV [0-9a-f:.]+ $VENDOR $DEVICE 0x020000( |\[|\$)"
    check msix-cap "MSI-X capability at 0x70" con -E '^VFU-CAP 0x11 0x70( |\[|$)'
    check pcie-cap "PCI Express capability at 0xa0 (link speed in sysfs)" \
        eval 'con -E "^VFU-CAP 0x10 0xa0( |\[|\$)" && con -E "^VFU-LINK 5.0 GT/s"'
}

# The frame exchange: each round `lab-frames guest` (Linux's driver) and
# the server's peer (our PMD) each report every one of the other's frames
# verified (result=ok needs rx_ok = acked = count), no corrupt or truncated
# frame. Round 2 takes a link flap, round 3 a PF reset, mid-round.
round_ok() { # round_ok <n>: both ends complete, nothing bad
    con -E "^VFU-FRAMES round=$1 sent=$FRAMES rx_ok=$FRAMES rx_bad=0 .*result=ok$" &&
        srv "PEER-FRAMES round=$1 sent=$FRAMES rx_ok=$FRAMES rx_bad=0 .*result=ok$"
}
# checks_rounds <driver> <how its re-initialisation shows in the trace>
checks_rounds() {
    local drv=$1 reinit=$2
    if ((GUEST_ROUNDS >= 1)); then
        check frames-both-ways "round 1: $FRAMES payload-checked frames each way, Linux's $drv <-> our PMD through the model's switch" \
            round_ok 1
    else
        skip frames-both-ways "no rounds (VFU_LAB_ROUNDS=0 or a register file)"
    fi
    if ((GUEST_ROUNDS >= 2)); then
        check frames-link-flap "round 2: a link flap mid-round, both drivers carry on, $FRAMES each way verified" \
            eval 'srv "FAULT round=2 link-flap" && round_ok 2 && con -E "^VFU-DMESG .*NIC Link is Down"'
    else
        skip frames-link-flap "fewer than 2 rounds"
    fi
    if ((GUEST_ROUNDS >= 3)); then
        check frames-pf-reset "round 3: a PF reset mid-round, both drivers re-initialise, $FRAMES each way verified" \
            eval 'srv "FAULT round=3 pf-reset" && round_ok 3 && srv "HOST-VF pf_reset_recoveries=[1-9]" && '"$reinit"
    else
        skip frames-pf-reset "fewer than 3 rounds"
    fi
}

# ixgbevf model (22 checks): Linux's ixgbevf probes the model, gets its
# MAC and API from the model's PF over the mailbox, brings the link up and
# trades frames with our PMD through the model; the model's interrupts
# reach the guest; the guest driver broke no rule the model enforces.
checks_ixgbevf() {
    checks_function
    check insmod "insmod ixgbevf.ko returned 0" con -E '^VFU-INSMOD rc=0 ixgbevf.ko'
    check probe-ran "ixgbevf's probe ran on the function (its dmesg lines)" \
        con -E '^VFU-DMESG .*ixgbevf [0-9a-f]{4}:'
    check driver-bound "ixgbevf bound to the function and registered a netdev" \
        eval 'con -E "^VFU-DRIVER ixgbevf$" && con -E "^VFU-NETDEV "'
    check no-protocol-errors "QEMU reported no vfio-user error replies" eval '! con "error reply"'
    check config-served "config space reads reached the server" tr_has ' CFG  R '
    check bar0-served "BAR0 reads and writes reached the server" \
        eval "tr_has ' BAR0 R ' && tr_has ' BAR0 W '"
    check vfctrl-reset "the driver reset the VF: VFCTRL (0x0000) written with RST (bit 26)" \
        tr_has ' BAR0 W 0x0000 len 4 val 0x04000000'
    check dma-shared "guest RAM reached the server as DMA_MAP fds" tr_has ' DMA  map .*: mapped$'
    check vf-mac "the driver took the MAC the model's PF gave in the VF_RESET reply" \
        con -E '^VFU-NETDEV eth0 02:09:00:00:00:01$'
    check mailbox-api "API negotiation and GET_QUEUES went over the model's mailbox" \
        srv 'mailbox requests 0x1 (0x8 )+0x9 '
    check link-up "the driver saw the model's link up (dmesg, carrier)" \
        eval 'con -E "^VFU-DMESG .*NIC Link is Up 10 Gbps" && con -E "^VFU-CARRIER 1 "'
    check guest-tx "frames the guest sent went through the model's TX queue" \
        eval '[[ $(srv_num "frames sent by the VF ([0-9]+)") -gt 0 ]]'
    check msix "the model's MSI-X messages reached the guest" \
        eval 'srv "MSI-X messages \\[[1-9]"'
    # Recovery from the PF reset: Linux's driver resets the VF again
    # (VFCTRL.RST a third time: probe, open, after the PF reset).
    checks_rounds ixgbevf '[[ $(tr_count " BAR0 W 0x0000 len 4 val 0x04000000") -ge 3 ]]'
    check no-violations "neither driver broke a rule of the model" srv '^vfio_user_server: violations: 0$'
    check server-exit "the server exited 0 when QEMU disconnected" eval '[[ $SRC == 0 ]]'
}

# iavf VF over a plain register file (VFU_LAB_MODEL=iavf-regfile): nothing
# answers the admin queue, so Linux's iavf does what
# shared/reference/vmlab/vfio-user/traces/iavf-noaq-* recorded: it finds
# VFGEN_RSTAT at VFACTIVE, sets up both admin queues, posts VERSION (ATQT
# 1), polls ATQH thousands of times, logs "Admin queue command never
# completed", shuts the queues down and tries again from the start; it
# never registers a netdev. Offsets: nic-facts.md B.2.
checks_iavf_regfile() {
    checks_function
    check insmod "insmod iavf.ko returned 0" con -E '^VFU-INSMOD rc=0 iavf.ko'
    check driver-bound "iavf's probe bound it to the function" con -E '^VFU-DRIVER iavf$'
    check no-protocol-errors "QEMU reported no vfio-user error replies" eval '! con "error reply"'
    check config-served "config space reads reached the server" tr_has ' CFG  R '
    check bar0-served "BAR0 reads and writes reached the server" \
        eval "tr_has ' BAR0 R ' && tr_has ' BAR0 W '"
    check dma-shared "guest RAM reached the server as DMA_MAP fds" tr_has ' DMA  map .*: mapped$'
    check rstat-active "the driver read VFGEN_RSTAT (0x8800) as VFACTIVE before its admin queue" \
        tr_has ' BAR0 R 0x8800 len 4 val 0x00000002'
    check atq-setup "ATQ set up: ATQLEN (0x6800) 32 entries | ENABLE, ATQBAL (0x7c00) a ring address" \
        eval "tr_has ' BAR0 W 0x6800 len 4 val 0x80000020' && tr_has ' BAR0 W 0x7c00 len 4 val 0x0*[1-9a-f][0-9a-f]*000$'"
    check arq-setup "ARQ set up: ARQLEN (0x8000) 32 entries | ENABLE, ARQBAL (0x6c00) a ring address, ARQT (0x7000) 31: all buffers posted" \
        eval "tr_has ' BAR0 W 0x8000 len 4 val 0x80000020' && tr_has ' BAR0 W 0x6c00 len 4 val 0x0*[1-9a-f][0-9a-f]*000$' &&
            tr_has ' BAR0 W 0x7000 len 4 val 0x0000001f'"
    check version-posted "the driver posted its first command (VERSION): ATQT (0x8400) written 1" \
        tr_has ' BAR0 W 0x8400 len 4 val 0x00000001'
    check aq-wait "it waited on the admin queue: ATQH (0x6400) polled at 0 more than 1000 times" \
        eval '[[ $(tr_count " BAR0 R 0x6400 len 4 val 0x00000000") -gt 1000 ]]'
    check aq-timeout "it gave up on the command: \"Admin queue command never completed\" in dmesg" \
        con -E '^VFU-DMESG .*iavf [0-9a-f]{4}:.*Admin queue command never completed'
    check aq-retry "and tried again: both queues shut down (ATQLEN, ARQLEN 0) and set up anew" \
        eval 'tr_has " BAR0 W 0x6800 len 4 val 0x00000000" && tr_has " BAR0 W 0x8000 len 4 val 0x00000000" &&
            [[ $(tr_count " BAR0 W 0x6800 len 4 val 0x80000020") -ge 2 ]]'
    check no-netdev "without an answer the driver registered no netdev" \
        eval 'con -E "^VFU-NETWAIT none " && ! con -E "^VFU-NETDEV "'
    check server-exit "the server exited 0 when QEMU disconnected" eval '[[ $SRC == 0 ]]'
}

# The iavf model (VFU_LAB_MODEL=iavf): to be switched on when
# drivers::sim::iavf is served (vfio_user_server's serve_iavf). Linux's
# iavf probes the model: VERSION and GET_VF_RESOURCES over the admin
# queue, the MAC from the VF resource, a netdev; the link comes up on the
# model's LINK_CHANGE event; frames both ways with our iavf PMD through
# the model's switch; no violation.
checks_iavf_model() {
    checks_function
    check insmod "insmod iavf.ko returned 0" con -E '^VFU-INSMOD rc=0 iavf.ko'
    check probe-ran "iavf's init task finished on the function (its dmesg lines)" \
        con -E '^VFU-DMESG .*iavf [0-9a-f]{4}:.*MAC address: '
    check driver-bound "iavf bound to the function and registered a netdev" \
        eval 'con -E "^VFU-DRIVER iavf$" && con -E "^VFU-NETDEV "'
    check no-protocol-errors "QEMU reported no vfio-user error replies" eval '! con "error reply"'
    check config-served "config space reads reached the server" tr_has ' CFG  R '
    check bar0-served "BAR0 reads and writes reached the server" \
        eval "tr_has ' BAR0 R ' && tr_has ' BAR0 W '"
    check dma-shared "guest RAM reached the server as DMA_MAP fds" tr_has ' DMA  map .*: mapped$'
    check aq-answered "the model answered the admin queue: no \"never completed\"" \
        eval '! con "Admin queue command never completed"'
    check vf-mac "the driver took the MAC the model gave in GET_VF_RESOURCES" \
        con -E '^VFU-NETDEV eth0 02:09:00:00:00:01$'
    check link-up "the driver saw the model's link up (LINK_CHANGE event: dmesg, carrier)" \
        eval 'con -E "^VFU-DMESG .*NIC Link is Up Speed is 10 Gbps" && con -E "^VFU-CARRIER 1 "'
    check msix "the model's MSI-X messages reached the guest" \
        eval 'srv "MSI-X messages \\[[1-9]"'
    # Recovery from the PF reset: Linux's iavf re-initialises its admin
    # queue (ATQLEN enabled again after the probe's).
    checks_rounds iavf '[[ $(tr_count " BAR0 W 0x6800 len 4 val 0x80000020") -ge 2 ]]'
    check no-violations "neither driver broke a rule of the model" srv '^vfio_user_server: violations: 0$'
    check server-exit "the server exited 0 when QEMU disconnected" eval '[[ $SRC == 0 ]]'
}

"$CHECKS"

say "--- guest: $GUEST_MODULE's probe and the frame exchange"
grep -E '^VFU-(DEV|CAP|LINK|INSMOD|DRIVER|NETWAIT|NETDEV|DMESG|CARRIER|FRAMES |ROUND|STATS)' "$OUT/console.txt" | sed 's/^/    /' >&2 || true
say "--- server"
grep -vE '^vfio_user_server: (violation|\.\.\.)' "$OUT/server.log" | sed 's/^/    /' >&2 || true
say "--- server: $(tr_count ' BAR0 R ') BAR0 reads, $(tr_count ' BAR0 W ') BAR0 writes, $(tr_count ' CFG ') config accesses; trace $OUT/trace.txt"
printf '%s\n' "${RESULTS[@]}" >&2
say "total $(elapsed) (boot $BOOT_S s)"
echo "vfio-user-lab: tests: $PASSED passed, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
