#!/bin/sh
# /init of the VM lab guest (busybox sh, PID 1). Copied into the initramfs by
# scripts/vmlab/run.sh; never run on the host.
#
# Sets the guest up the way the lab tests expect, then runs every binary in
# /lab/tests.list in order and powers off:
#   - modules from /lab/modules.<mode>.list (dependency order, made on the
#     host; one module a line with its parameters): in noiommu mode the
#     rebuilt vfio.ko with enable_unsafe_noiommu_mode=1
#   - proc, sys, devtmpfs, /tmp, hugetlbfs on /dev/hugepages, N x 2M hugepages
#   - the igb PF netdev up, 3 SR-IOV VFs; VF0 and VF2 -> vfio-pci; VF1 stays
#     on the kernel igbvf driver, netdev up; no admin MAC on any VF
#   - /usr/sbin/ip-full: the host's iproute2 ip (FASTPATH_LAB_IP), checked
# Console protocol read by run.sh (one per line):
#   LAB-SETUP ok|FAILED ...            once, after the setup
#   LAB-RESULT name=<bin> rc=<n>       one per binary
#   LAB-SUMMARY passed=<n> failed=<m>  last
# Kernel command line knobs (they reach /init as environment variables):
#   lab_iommu=type1|noiommu (type1)  lab_hugepages=N (64)
#   lab_numvfs=N (3, at least 3)  lab_test_timeout=S (0 = none)
export PATH=/bin:/sbin

up() { cut -d' ' -f1 /proc/uptime; }
info() { echo "LAB-INFO [$(up)s] $*"; }
SETUP_ERR=
setup_fail() {
    [ -n "$SETUP_ERR" ] || SETUP_ERR=$*
    echo "LAB-ERROR $*"
}
# The first entry of a directory (the netdev under a PCI device's net/).
first_entry() {
    for e in "$1"/*; do
        [ -e "$e" ] && basename "$e"
        return
    done
}
# Reads the last component of a sysfs symlink (driver name, group number).
link_name() { [ -e "$1" ] && basename "$(readlink "$1")"; }
# wait_for <tenths of a second> <command...>: polls until the command
# succeeds. The bounds only catch what never happens (30 s): a condition
# costs no time once it holds, and TCG guests vary a lot in speed.
wait_for() {
    n=$1
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ "$n" -gt 0 ] || return 1
        sleep 0.1
    done
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /dev/hugepages
mount -t tmpfs tmpfs /tmp
echo "LAB-INIT kernel=$(uname -r) uptime=$(up)s"

IOMMU=${lab_iommu:-type1}
HUGEPAGES=${lab_hugepages:-64}
NUMVFS=${lab_numvfs:-3}
TEST_TIMEOUT=${lab_test_timeout:-0}
PF='' PFNET='' VF0='' VF1='' VF2='' VF1NET='' GROUP='' GROUP2=''

# to_vfio <name> <BDF>: binds the VF to vfio-pci; its group in BOUND_GROUP.
to_vfio() {
    d=/sys/bus/pci/devices/$2
    [ -e "$d/driver" ] && echo "$2" >"$d/driver/unbind"
    echo vfio-pci >"$d/driver_override"
    echo "$2" >/sys/bus/pci/drivers_probe
    [ "$(link_name "$d/driver")" = vfio-pci ] || { setup_fail "$1 $2 did not bind to vfio-pci (driver: $(link_name "$d/driver"))"; return 1; }
    BOUND_GROUP=$(link_name "$d/iommu_group")
    # vfio names a no-IOMMU group's node noiommu-<n>.
    node=/dev/vfio/$BOUND_GROUP
    [ "$IOMMU" = noiommu ] && node=/dev/vfio/noiommu-$BOUND_GROUP
    [ -c "$node" ] || { setup_fail "$1 $2: $node missing (/dev/vfio: $(ls /dev/vfio | tr '\n' ' '))"; return 1; }
    BOUND_GROUP=${node#/dev/vfio/}
}

setup() {
    modules=/lab/modules.$IOMMU.list
    [ -f "$modules" ] || { setup_fail "no $modules: lab_iommu=$IOMMU is not type1 or noiommu, or run.sh did not prepare it"; return; }
    while read -r ko args; do
        # shellcheck disable=SC2086 # args is a word list
        insmod "$ko" $args 2>/tmp/insmod.err ||
            grep -q 'File exists' /tmp/insmod.err ||
            { setup_fail "insmod $ko $args: $(cat /tmp/insmod.err)"; return; }
    done <"$modules"
    info "$(wc -l <"$modules") modules loaded ($IOMMU: $(ls /sys/class/iommu 2>/dev/null | wc -l) IOMMUs, vfio enable_unsafe_noiommu_mode=$(cat /sys/module/vfio/parameters/enable_unsafe_noiommu_mode 2>/dev/null || echo -))"

    mount -t hugetlbfs nodev /dev/hugepages || { setup_fail "mount hugetlbfs"; return; }
    echo "$HUGEPAGES" >/proc/sys/vm/nr_hugepages
    got=$(cat /proc/sys/vm/nr_hugepages)
    [ "$got" = "$HUGEPAGES" ] || { setup_fail "nr_hugepages: asked $HUGEPAGES, got $got"; return; }
    info "$got x 2M hugepages, hugetlbfs on /dev/hugepages"
    /usr/sbin/ip-full -V >/tmp/ip-full.out 2>&1 || { setup_fail "/usr/sbin/ip-full does not run: $(cat /tmp/ip-full.out)"; return; }

    # The igb PF: Intel 82576, 8086:10c9.
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = 0x8086 ] && [ "$(cat "$d/device")" = 0x10c9 ] && PF=${d##*/}
    done
    [ -n "$PF" ] || { setup_fail "no igb PF (8086:10c9) on the PCI bus"; return; }
    pfdev=/sys/bus/pci/devices/$PF
    wait_for 300 test -d "$pfdev/net" || { setup_fail "igb PF $PF has no netdev"; return; }
    PFNET=$(first_entry "$pfdev/net")
    ip link set "$PFNET" up || { setup_fail "ip link set $PFNET up"; return; }
    echo "$NUMVFS" >"$pfdev/sriov_numvfs"
    [ "$(cat "$pfdev/sriov_numvfs")" = "$NUMVFS" ] || { setup_fail "sriov_numvfs: asked $NUMVFS, got $(cat "$pfdev/sriov_numvfs")"; return; }
    VF0=$(link_name "$pfdev/virtfn0")
    VF1=$(link_name "$pfdev/virtfn1")
    VF2=$(link_name "$pfdev/virtfn2")
    if [ -z "$VF0" ] || [ -z "$VF1" ] || [ -z "$VF2" ]; then
        setup_fail "PF $PF has no virtfn0/virtfn1/virtfn2"
        return
    fi
    info "PF $PF ($PFNET) up with $NUMVFS VFs: VF0 $VF0, VF1 $VF1, VF2 $VF2"

    # The VFs were probed while the PF was still resetting for SR-IOV; such an
    # igbvf needs about 10 s to get link. Once the PF has carrier, re-probe
    # VF1 so its reset handshake succeeds at once (reference/vmlab/rx).
    wait_for 300 grep -q 1 "/sys/class/net/$PFNET/carrier" 2>/dev/null ||
        info "PF $PFNET has no carrier yet"
    vf1dev=/sys/bus/pci/devices/$VF1
    if [ -e "$vf1dev/driver" ]; then
        echo "$VF1" >"$vf1dev/driver/unbind"
        echo "$VF1" >/sys/bus/pci/drivers/igbvf/bind
    fi
    [ "$(link_name "$vf1dev/driver")" = igbvf ] || { setup_fail "VF1 $VF1 is not on igbvf (driver: $(link_name "$vf1dev/driver"))"; return; }
    wait_for 300 test -d "$vf1dev/net" || { setup_fail "VF1 $VF1 has no netdev"; return; }
    VF1NET=$(first_entry "$vf1dev/net")
    ip link set "$VF1NET" up || { setup_fail "ip link set $VF1NET up"; return; }

    # VF0 and VF2 -> vfio-pci (VF2 is the second port of lab_fastpath).
    to_vfio VF0 "$VF0" || return
    GROUP=$BOUND_GROUP
    to_vfio VF2 "$VF2" || return
    GROUP2=$BOUND_GROUP
    info "VF0 $VF0 on vfio-pci (/dev/vfio/$GROUP), VF2 $VF2 on vfio-pci (/dev/vfio/$GROUP2); VF1 $VF1 on igbvf ($VF1NET)"

    wait_for 300 grep -q 1 "/sys/class/net/$VF1NET/carrier" 2>/dev/null ||
        info "VF1 $VF1NET has no carrier yet"
}

setup
if [ -n "$SETUP_ERR" ]; then
    echo "LAB-SETUP FAILED: $SETUP_ERR"
    echo "LAB-INFO last kernel messages:"
    dmesg | tail -30 | sed 's/^/  dmesg| /'
else
    echo "LAB-SETUP ok iommu=$IOMMU uptime=$(up)s VF0=$VF0 group=$GROUP VF1=$VF1 VF1_NETDEV=$VF1NET VF2=$VF2 group2=$GROUP2 PF_NETDEV=$PFNET hugepages=$HUGEPAGES"
fi

passed=0
failed=0
while read -r name rust path; do
    if [ -n "$SETUP_ERR" ]; then
        rc=255
        echo "LAB-INFO $name not run: the lab setup failed"
    else
        set -- "$path"
        [ "$rust" = 1 ] && set -- "$@" --test-threads=1
        [ "$TEST_TIMEOUT" -gt 0 ] 2>/dev/null && set -- timeout "$TEST_TIMEOUT" "$@"
        echo "LAB-RUN name=$name uptime=$(up)s"
        # In a session of its own (setsid: pid = process group), so that
        # whatever it leaves running is killed before the next binary.
        (cd /tmp && exec setsid env -i PATH=/bin:/sbin HOME=/tmp RUST_BACKTRACE=1 \
            FASTPATH_LAB=1 FASTPATH_LAB_IOMMU="$IOMMU" FASTPATH_LAB_VF0="$VF0" FASTPATH_LAB_VF1_KERNEL="$VF1" FASTPATH_LAB_VF2="$VF2" \
            FASTPATH_LAB_VF1_NETDEV="$VF1NET" FASTPATH_LAB_PF_NETDEV="$PFNET" FASTPATH_LAB_IP=/usr/sbin/ip-full \
            "$@" </dev/null 2>&1) &
        pid=$!
        wait "$pid"
        rc=$?
        if kill -9 "-$pid" 2>/dev/null; then
            echo "LAB-INFO $name left processes running; killed them"
        fi
    fi
    echo "LAB-RESULT name=$name rc=$rc"
    if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done </lab/tests.list
echo "LAB-SUMMARY passed=$passed failed=$failed uptime=$(up)s"
sync
poweroff -f
