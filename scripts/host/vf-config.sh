#!/usr/bin/env bash
# Sets a VF's MAC, trust and spoof checking from the PF side
# (ip link set PF vf N ...), changing only what differs.
#
# Usage: vf-config.sh PF VF_INDEX [--mac MAC] [--trust on|off]
#                     [--spoofchk on|off] [--dry-run] [--root DIR]
#   PF        the PF's netdev (enp3s0f0) or PCI address (0000:03:00.0)
#   VF_INDEX  0 to sriov_numvfs - 1
#   --mac     the VF's MAC, set by the PF (an administratively set MAC: the
#             VF driver cannot change it); unicast, not all zeros
#   --trust   on lets the VF ask for promiscuous mode and other MACs
#   --spoofchk on drops frames the VF sends from another source MAC
#   --dry-run, --root DIR: see scripts/host/lib.sh
# A second run with the same settings changes nothing and says so.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

mac='' trust='' spoofchk='' args=()
on_off() { [[ $2 == on || $2 == off ]] || usage_error "$1 takes on or off, not '$2'"; }
while (($#)); do
    case $1 in
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    --mac) mac=${2:?--mac needs a MAC address}; shift 2 ;;
    --trust) on_off "$1" "${2:-}"; trust=$2; shift 2 ;;
    --spoofchk) on_off "$1" "${2:-}"; spoofchk=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) args+=("$1"); shift ;;
    esac
done
((${#args[@]} == 2)) || usage_error "needs PF and VF_INDEX"
[[ -n $mac$trust$spoofchk ]] || usage_error "nothing to set: give --mac, --trust or --spoofchk"
vf=${args[1]}
[[ $vf =~ ^[0-9]+$ ]] || usage_error "VF_INDEX must be a number, not '$vf'"
vf=$((10#$vf))
if [[ -n $mac ]]; then
    mac=${mac,,}
    [[ $mac =~ ^[0-9a-f]{2}(:[0-9a-f]{2}){5}$ ]] || usage_error "'$mac' is not a MAC address such as 02:00:00:00:00:01"
    # The I/G bit (bit 0 of the first octet) marks a group address.
    (((16#${mac:0:2} & 1) == 0)) || usage_error "$mac is a multicast address: a VF needs a unicast MAC"
    [[ $mac != 00:00:00:00:00:00 ]] || usage_error "00:00:00:00:00:00 is no MAC (it clears the administrative MAC on some drivers: use a real one)"
fi

pf=$(pf_address "${args[0]}")
dev=$(pci_device "$pf")
[[ -e $(p "$dev/sriov_numvfs") ]] || die "$pf has no SR-IOV capability (no sriov_numvfs)"
numvfs=$(read_file "$dev/sriov_numvfs")
((vf < numvfs)) || die "$pf has $numvfs VFs: no VF $vf (scripts/host/create-vfs.sh $pf N creates them)"
netdev=''
for n in "$(p "$dev/net")"/*; do
    [[ -e $n ]] && netdev=${n##*/} && break
done
[[ -n $netdev ]] || die "$pf has no network interface: ip link configures VFs through the PF's netdev (bind the PF to its kernel driver)"

# The VF's line in `ip link show PF`:
#   vf 0     link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff, spoof checking on, link-state auto, trust off
# (older iproute2 wrote `vf 0 MAC 02:00:00:00:00:01, ...`).
line=$(ip link show dev "$netdev" | grep -E "^[[:space:]]+vf ${vf}[[:space:]]") ||
    die "ip link show $netdev lists no VF $vf"
cur_mac=$(sed -nE 's/.*(link\/ether|MAC) ([0-9a-f:]{17}).*/\2/p' <<<"$line")
cur_spoofchk=$(sed -nE 's/.*spoof checking (on|off).*/\1/p' <<<"$line")
cur_trust=$(sed -nE 's/.*trust (on|off).*/\1/p' <<<"$line")

set_one() { # NAME WANTED CURRENT
    [[ -n $2 ]] || return 0
    if [[ $2 == "$3" ]]; then
        say "$netdev vf $vf: $1 is already $2"
        return
    fi
    [[ -n $3 ]] || say "$netdev vf $vf: $1 not shown by ip link (driver without it?): setting it"
    change ip link set dev "$netdev" vf "$vf" "$1" "$2"
}
set_one mac "$mac" "$cur_mac"
set_one spoofchk "$spoofchk" "$cur_spoofchk"
set_one trust "$trust" "$cur_trust"
finish "$netdev vf $vf already has these settings"
