#!/usr/bin/env bash
# Tests of the host set-up scripts without hardware: each case builds a
# fake /sys and /proc in a temporary directory and runs a script on it with
# --root. A small fake kernel (.fake-kernel in the tree, called after each
# sysfs write) does what Linux does with the writes: creates and removes
# VFs (refusing a change between two non-zero counts, as the kernel does
# with EBUSY), binds drivers on drivers_probe and bind, grants hugepages up
# to a capacity. Fake ip, modprobe and mount come first in PATH and log
# their calls. Checks the results, the refusals and their messages,
# idempotence (a second run changes no file) and --dry-run (nothing
# changes). Also shellcheck on every script of issue 16's set-up.
#
# Closes with `host-scripts: tests: N passed, M failed, K skipped`.
set -euo pipefail
cd "$(dirname "$0")/../.."
H=scripts/host

pass=0 fail=0 skip=0
result() { # STATUS NAME [WHY]
    case $1 in
    PASS) pass=$((pass + 1)) ;;
    FAIL) fail=$((fail + 1)) ;;
    SKIP) skip=$((skip + 1)) ;;
    esac
    printf 'host-scripts: %s %s%s\n' "$1" "$2" "${3:+ ($3)}"
}

work=$(mktemp -d /tmp/fastpath-host-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin=$work/bin
mkdir -p "$bin"

# ---- fake commands (they find the tree through FAKE_ROOT)
cat >"$bin/ip" <<'EOF'
#!/usr/bin/env bash
# ip link show dev NETDEV | ip link set dev NETDEV vf N KEY VALUE
set -euo pipefail
echo "ip $*" >>"$FAKE_ROOT/.calls"
st=$FAKE_ROOT/.ip
if [[ $1 == link && $2 == show ]]; then
    echo "2: $4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP mode DEFAULT group default qlen 1000"
    echo "    link/ether 02:00:00:00:00:ff brd ff:ff:ff:ff:ff:ff"
    for f in "$st/$4"/vf*; do
        [[ -e $f ]] || continue
        read -r mac spoof trust <"$f"
        echo "    vf ${f##*/vf}     link/ether $mac brd ff:ff:ff:ff:ff:ff, spoof checking $spoof, link-state auto, trust $trust"
    done
elif [[ $1 == link && $2 == set && $5 == vf ]]; then
    f=$st/$4/vf$6
    read -r mac spoof trust <"$f"
    case $7 in
    mac) mac=$8 ;;
    spoofchk) spoof=$8 ;;
    trust) trust=$8 ;;
    *) exit 2 ;;
    esac
    echo "$mac $spoof $trust" >"$f"
else
    echo "fake ip: unsupported: $*" >&2
    exit 2
fi
EOF
cat >"$bin/modprobe" <<'EOF'
#!/usr/bin/env bash
echo "modprobe $*" >>"$FAKE_ROOT/.calls"
[[ -e $FAKE_ROOT/.no-$1 ]] && { echo "modprobe: FATAL: Module $1 not found" >&2; exit 1; }
mkdir -p "$FAKE_ROOT/sys/bus/pci/drivers/$1"
EOF
cat >"$bin/mount" <<'EOF'
#!/usr/bin/env bash
# mount -t hugetlbfs -o pagesize=S nodev TARGET
echo "mount $*" >>"$FAKE_ROOT/.calls"
echo "nodev $6 $2 rw,relatime,$4 0 0" >>"$FAKE_ROOT/proc/mounts"
EOF
chmod +x "$bin"/*
export PATH=$bin:$PATH

# ---- the fake tree
# new_tree: an SR-IOV PF 0000:03:00.0 (eth0, ixgbe, 8 VFs at most), a
# device without SR-IOV 0000:00:1f.0, 2M hugepages (capacity 512), node0.
new_tree() {
    R=$work/root.$((++trees))
    export FAKE_ROOT=$R
    local pf=$R/sys/bus/pci/devices/0000:03:00.0
    mkdir -p "$pf/net/eth0" "$R/sys/class/net" "$R/sys/bus/pci/drivers/ixgbe" \
        "$R/sys/bus/pci/drivers/ixgbevf" "$R/sys/bus/pci/devices/0000:00:1f.0" \
        "$R/sys/kernel/mm/hugepages/hugepages-2048kB" \
        "$R/sys/devices/system/node/node0/hugepages/hugepages-2048kB" \
        "$R/sys/module/vfio/parameters" "$R/proc" "$R/.ip/eth0"
    echo 8 >"$pf/sriov_totalvfs"
    echo 0 >"$pf/sriov_numvfs"
    ln -s "$R/sys/bus/pci/drivers/ixgbe" "$pf/driver"
    ln -s "$pf" "$R/sys/class/net/eth0/device" 2>/dev/null || {
        mkdir -p "$R/sys/class/net/eth0"
        ln -s "$pf" "$R/sys/class/net/eth0/device"
    }
    echo N >"$R/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"
    for d in "$R/sys/kernel/mm/hugepages/hugepages-2048kB" "$R/sys/devices/system/node/node0/hugepages/hugepages-2048kB"; do
        echo 0 >"$d/nr_hugepages"
        echo 0 >"$d/free_hugepages"
    done
    echo 512 >"$R/.hugepages-capacity"
    echo "sysfs /sys sysfs rw 0 0" >"$R/proc/mounts"
    : >"$R/.calls"
    cat >"$R/.fake-kernel" <<'EOF'
#!/usr/bin/env bash
# .fake-kernel ROOT FILE VALUE: what Linux does after a sysfs write.
set -euo pipefail
R=$1 file=$2 value=$3
devs=$R/sys/bus/pci/devices
case $file in
*/sriov_numvfs)
    pf=$R${file%/sriov_numvfs}
    old=$(cat "$pf/.numvfs" 2>/dev/null || echo 0)
    total=$(cat "$pf/sriov_totalvfs")
    if ((value > total)) || ((old != 0 && value != 0 && value != old)); then
        echo "$old" >"$pf/sriov_numvfs"   # EBUSY / ERANGE: unchanged
        exit 1
    fi
    for ((i = 0; i < old; i++)); do
        vf=$(basename "$(readlink "$pf/virtfn$i")")
        rm -rf "${devs:?}/$vf" "$pf/virtfn$i" "$R/sys/kernel/iommu_groups/$((40 + i))"
        rm -f "$R/.ip/eth0/vf$i"
    done
    for ((i = 0; i < value; i++)); do
        vf=0000:03:10.$i
        mkdir -p "$devs/$vf" "$R/sys/kernel/iommu_groups/$((40 + i))/devices"
        echo 0x8086 >"$devs/$vf/vendor"
        echo 0x10ed >"$devs/$vf/device"
        echo ixgbevf >"$devs/$vf/.default_driver"
        ln -s "$R/sys/bus/pci/drivers/ixgbevf" "$devs/$vf/driver"
        [[ -e $R/.no-iommu ]] || ln -s "$R/sys/kernel/iommu_groups/$((40 + i))" "$devs/$vf/iommu_group"
        ln -s "$devs/$vf" "$R/sys/kernel/iommu_groups/$((40 + i))/devices/$vf"
        ln -s "$devs/$vf" "$pf/virtfn$i"
        echo "00:00:00:00:00:00 on off" >"$R/.ip/eth0/vf$i"
    done
    echo "$value" >"$pf/.numvfs"
    ;;
*/driver/unbind)
    rm -f "$devs/$value/driver"
    ;;
/sys/bus/pci/drivers_probe)
    d=$devs/$value
    [[ -e $d/driver ]] && exit 0
    drv=$(cat "$d/driver_override" 2>/dev/null || true)
    [[ -n $drv ]] || drv=$(cat "$d/.default_driver")
    if [[ $drv == vfio-pci && ! -e $d/iommu_group && $(cat "$R/sys/module/vfio/parameters/enable_unsafe_noiommu_mode") != Y ]]; then
        exit 0   # vfio-pci's probe fails without a group: left unbound
    fi
    [[ -d $R/sys/bus/pci/drivers/$drv ]] && ln -s "$R/sys/bus/pci/drivers/$drv" "$d/driver"
    ;;
/sys/bus/pci/drivers/*/bind)
    drv=${file#/sys/bus/pci/drivers/}
    drv=${drv%/bind}
    [[ -e $devs/$value/driver ]] && exit 1   # EBUSY: bound elsewhere
    ln -s "$R/sys/bus/pci/drivers/$drv" "$devs/$value/driver"
    ;;
*/nr_hugepages)
    cap=$(cat "$R/.hugepages-capacity")
    ((value <= cap)) || value=$cap
    echo "$value" >"$R$file"
    echo "$value" >"$(dirname "$R$file")/free_hugepages"
    ;;
esac
EOF
    chmod +x "$R/.fake-kernel"
}
trees=0

# A fingerprint of the tree (files, contents, links), without the call log.
snap() {
    (cd "$R" && find . ! -name .calls \( -type f -o -type l \) -printf '%p %l\n' | sort &&
        find . ! -name .calls -type f -exec md5sum {} + | sort)
}

# ---- checks
OUT=''
indent() { sed 's/^/    | /'; }
# ok NAME CMD...: must exit 0.
ok() {
    local name=$1 rc=0
    shift
    OUT=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then result PASS "$name"; else
        result FAIL "$name" "exit $rc"
        indent <<<"$OUT"
    fi
    return 0
}
# refused NAME PATTERN CMD...: must exit non-zero, say PATTERN, change
# nothing.
refused() {
    local name=$1 pattern=$2 rc=0 before
    shift 2
    before=$(snap)
    OUT=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        result FAIL "$name" "not refused"
    elif ! grep -Ezq -- "$pattern" <<<"$OUT"; then
        result FAIL "$name" "refused, but without /$pattern/"
    elif [[ $(snap) != "$before" ]]; then
        result FAIL "$name" "refused, but the tree changed"
    else
        result PASS "$name"
        return 0
    fi
    indent <<<"$OUT"
}
# unchanged NAME PATTERN CMD...: must exit 0, say PATTERN, change no file
# and run no changing command (a second run, or --dry-run).
unchanged() {
    local name=$1 pattern=$2 rc=0 before calls
    shift 2
    before=$(snap)
    calls=$(wc -l <"$R/.calls")
    OUT=$("$@" 2>&1) || rc=$?
    if ((rc != 0)); then
        result FAIL "$name" "exit $rc"
    elif ! grep -Ezq -- "$pattern" <<<"$OUT"; then
        result FAIL "$name" "no /$pattern/ in the output"
    elif [[ $(snap) != "$before" ]]; then
        result FAIL "$name" "the tree changed"
    elif tail -n +"$((calls + 1))" "$R/.calls" | grep -Eq '^(ip link set|modprobe|mount)'; then
        result FAIL "$name" "ran $(tail -n +"$((calls + 1))" "$R/.calls" | grep -E '^(ip link set|modprobe|mount)' | head -1)"
    else
        result PASS "$name"
        return 0
    fi
    indent <<<"$OUT"
}
# is NAME ACTUAL EXPECTED
is() {
    if [[ $2 == "$3" ]]; then result PASS "$1"; else result FAIL "$1" "got '$2', expected '$3'"; fi
}
link() { if [[ -L $R$1 ]]; then basename "$(readlink "$R$1")"; fi; }
# has NAME PATTERN: the last output says PATTERN.
has() {
    if grep -q -- "$2" <<<"$OUT"; then result PASS "$1"; else
        result FAIL "$1" "no /$2/ in the output"
        indent <<<"$OUT"
    fi
}
dev=/sys/bus/pci/devices

# ---- create-vfs.sh
new_tree
refused "create-vfs: a device without SR-IOV" "no SR-IOV capability \(no sriov_totalvfs\)" $H/create-vfs.sh --root "$R" 0000:00:1f.0 2
refused "create-vfs: more VFs than sriov_totalvfs" "at most 8 VFs" $H/create-vfs.sh --root "$R" 0000:03:00.0 9
refused "create-vfs: an absent device" "no PCI device 0000:09:00.0" $H/create-vfs.sh --root "$R" 0000:09:00.0 2
refused "create-vfs: N not a number" "must be a number" $H/create-vfs.sh --root "$R" 0000:03:00.0 two
unchanged "create-vfs: --dry-run changes nothing" "would write '4'" $H/create-vfs.sh --root "$R" --dry-run 0000:03:00.0 4
ok "create-vfs: 4 VFs on a PF named by its netdev" $H/create-vfs.sh --root "$R" eth0 4
is "create-vfs: sriov_numvfs is 4" "$(cat "$R$dev/0000:03:00.0/sriov_numvfs")" 4
is "create-vfs: virtfn3 is 0000:03:10.3" "$(link $dev/0000:03:00.0/virtfn3)" 0000:03:10.3
unchanged "create-vfs: a second run changes nothing" "nothing to do: 0000:03:00.0 already has 4 VFs" $H/create-vfs.sh --root "$R" 0000:03:00.0 4
refused "create-vfs: 4 -> 2 needs --force" "only through 0.*--force" $H/create-vfs.sh --root "$R" 0000:03:00.0 2
ok "create-vfs: 4 -> 2 with --force" $H/create-vfs.sh --root "$R" --force 0000:03:00.0 2
is "create-vfs: --force went through 0" "$(grep -c "writing '0'" <<<"$OUT") $(cat "$R$dev/0000:03:00.0/sriov_numvfs")" "1 2"
rm "$R$dev/0000:03:00.0/driver"
refused "create-vfs: a PF without a driver" "no driver bound" $H/create-vfs.sh --root "$R" 0000:03:00.0 3

# ---- vf-config.sh
new_tree
$H/create-vfs.sh --root "$R" 0000:03:00.0 2 >/dev/null
ok "vf-config: MAC, trust and spoofchk" $H/vf-config.sh --root "$R" eth0 1 --mac 02:AB:00:00:00:01 --trust on --spoofchk off
is "vf-config: the PF side has them" "$(cat "$R/.ip/eth0/vf1")" "02:ab:00:00:00:01 off on"
unchanged "vf-config: a second run changes nothing" "nothing to do" $H/vf-config.sh --root "$R" 0000:03:00.0 1 --mac 02:ab:00:00:00:01 --trust on --spoofchk off
ok "vf-config: only what differs is set" $H/vf-config.sh --root "$R" eth0 1 --mac 02:ab:00:00:00:01 --spoofchk on
is "vf-config: one ip link set, spoofchk" "$(grep -c '^ip link set' "$R/.calls") $(tail -n 1 "$R/.calls")" "4 ip link set dev eth0 vf 1 spoofchk on"
unchanged "vf-config: --dry-run changes nothing" "would run: ip link set dev eth0 vf 0 trust on" $H/vf-config.sh --root "$R" --dry-run eth0 0 --trust on
refused "vf-config: VF index beyond sriov_numvfs" "has 2 VFs: no VF 2" $H/vf-config.sh --root "$R" eth0 2 --trust on
refused "vf-config: a multicast MAC" "multicast" $H/vf-config.sh --root "$R" eth0 0 --mac 01:00:5e:00:00:01
refused "vf-config: trust neither on nor off" "takes on or off" $H/vf-config.sh --root "$R" eth0 0 --trust yes

# ---- bind-vfio.sh
new_tree
touch "$R/.no-iommu"
$H/create-vfs.sh --root "$R" 0000:03:00.0 2 >/dev/null
refused "bind-vfio: no IOMMU group: refused, no-IOMMU mode suggested" "no IOMMU group.*enable_unsafe_noiommu_mode=1" $H/bind-vfio.sh --root "$R" 0000:03:10.0
is "bind-vfio: no-IOMMU mode left off" "$(cat "$R/sys/module/vfio/parameters/enable_unsafe_noiommu_mode")" N
echo Y >"$R/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"
ok "bind-vfio: no group, no-IOMMU mode on by the operator" $H/bind-vfio.sh --root "$R" 0000:03:10.0
is "bind-vfio: on vfio-pci in no-IOMMU mode" "$(link $dev/0000:03:10.0/driver)" vfio-pci

new_tree
$H/create-vfs.sh --root "$R" 0000:03:00.0 2 >/dev/null
touch "$R/.no-vfio-pci"
refused "bind-vfio: vfio-pci missing from the kernel" "modprobe vfio-pci failed" $H/bind-vfio.sh --root "$R" 0000:03:10.0
rm "$R/.no-vfio-pci"
: >"$R/.calls"
unchanged "bind-vfio: --dry-run changes nothing" "would write 'vfio-pci' to /sys/bus/pci/devices/0000:03:10.0/driver_override" $H/bind-vfio.sh --root "$R" --dry-run 0000:03:10.0 0000:03:10.1
ok "bind-vfio: two VFs" $H/bind-vfio.sh --root "$R" 0000:03:10.0 0000:03:10.1
is "bind-vfio: both on vfio-pci, override set" "$(link $dev/0000:03:10.0/driver) $(link $dev/0000:03:10.1/driver) $(cat "$R$dev/0000:03:10.1/driver_override")" "vfio-pci vfio-pci vfio-pci"
is "bind-vfio: modprobe vfio-pci once" "$(grep -c '^modprobe vfio-pci' "$R/.calls")" 1
has "bind-vfio: names the group node" '/dev/vfio/40'
unchanged "bind-vfio: a second run changes nothing" "already on vfio-pci.*" $H/bind-vfio.sh --root "$R" 0000:03:10.0 0000:03:10.1
ln -s "$R$dev/0000:03:00.0" "$R/sys/kernel/iommu_groups/40/devices/0000:03:00.0"
ok "bind-vfio: a group member on another driver" $H/bind-vfio.sh --root "$R" 0000:03:10.0
has "bind-vfio: warns that the group is not viable" 'warning: 0000:03:00.0 shares IOMMU group 40 and is on ixgbe'

# ---- unbind-vfio.sh (on the tree bind-vfio left)
ok "unbind-vfio: back to ixgbevf" $H/unbind-vfio.sh --root "$R" --driver ixgbevf 0000:03:10.0
is "unbind-vfio: on ixgbevf, override cleared" "$(link $dev/0000:03:10.0/driver) '$(cat "$R$dev/0000:03:10.0/driver_override")'" "ixgbevf ''"
unchanged "unbind-vfio: a second run changes nothing" "nothing to do" $H/unbind-vfio.sh --root "$R" --driver ixgbevf 0000:03:10.0
unchanged "unbind-vfio: --dry-run changes nothing" "would write '0000:03:10.1' to /sys/bus/pci/devices/0000:03:10.1/driver/unbind" $H/unbind-vfio.sh --root "$R" --dry-run 0000:03:10.1
ok "unbind-vfio: the kernel's default driver" $H/unbind-vfio.sh --root "$R" 0000:03:10.1
is "unbind-vfio: drivers_probe chose ixgbevf" "$(link $dev/0000:03:10.1/driver)" ixgbevf
refused "unbind-vfio: --driver vfio-pci" "use bind-vfio.sh" $H/unbind-vfio.sh --root "$R" --driver vfio-pci 0000:03:10.1

# ---- hugepages.sh
new_tree
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
unchanged "hugepages: --dry-run changes nothing" "would write '64'" $H/hugepages.sh --root "$R" --dry-run --size 2M --count 64 --mount /dev/hugepages
ok "hugepages: 64 x 2M and a hugetlbfs mount" $H/hugepages.sh --root "$R" --size 2M --count 64 --mount /dev/hugepages
is "hugepages: nr_hugepages is 64" "$(cat "$R$hp/nr_hugepages")" 64
is "hugepages: hugetlbfs mounted with pagesize=2M" "$(grep -c " $R/dev/hugepages hugetlbfs .*pagesize=2M" "$R/proc/mounts")" 1
unchanged "hugepages: a second run changes nothing" "nothing to do" $H/hugepages.sh --root "$R" --size 2M --count 64 --mount /dev/hugepages
echo 100 >"$R/.hugepages-capacity"
refused_partial() {
    local rc=0
    OUT=$($H/hugepages.sh --root "$R" --size 2M --count 256 2>&1) || rc=$?
    if ((rc != 0)) && grep -q "gave 100 of the 256 2M pages" <<<"$OUT"; then
        result PASS "hugepages: fewer pages granted than asked is an error"
    else
        result FAIL "hugepages: fewer pages granted than asked is an error" "exit $rc: $OUT"
    fi
}
refused_partial
refused "hugepages: a size the kernel lacks" "no 1G hugepages.*sizes it has: 2048kB" $H/hugepages.sh --root "$R" --size 1G --count 1
refused "hugepages: an absent NUMA node" "no NUMA node 3" $H/hugepages.sh --root "$R" --size 2M --count 8 --node 3
ok "hugepages: on node 0" $H/hugepages.sh --root "$R" --size 2M --count 8 --node 0
is "hugepages: node 0's nr_hugepages" "$(cat "$R/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages")" 8
echo "nodev $R/mnt/huge1g hugetlbfs rw,relatime,pagesize=1024M 0 0" >>"$R/proc/mounts"
refused "hugepages: a mount of another page size" "another page size" $H/hugepages.sh --root "$R" --size 2M --count 100 --mount /mnt/huge1g
refused "hugepages: --size 4K" "takes 2M or 1G" $H/hugepages.sh --root "$R" --size 4K --count 1

# ---- shellcheck over the set-up scripts of issue 16
scripts=("$H"/*.sh scripts/container-build.sh scripts/container-test.sh scripts/validate-manifests.sh)
if ! command -v shellcheck >/dev/null && [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq shellcheck >/dev/null 2>&1 ||
        { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq shellcheck >/dev/null 2>&1; } || true
fi
if command -v shellcheck >/dev/null; then
    if OUT=$(shellcheck -x "${scripts[@]}" 2>&1); then
        result PASS "shellcheck (${#scripts[@]} scripts)"
    else
        result FAIL "shellcheck" "findings below"
        indent <<<"$OUT" | head -40
    fi
else
    result SKIP shellcheck "shellcheck is not installed (apt-get install shellcheck)"
fi

echo "host-scripts: tests: $pass passed, $fail failed, $skip skipped"
((fail == 0))
