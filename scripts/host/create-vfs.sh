#!/usr/bin/env bash
# Creates N SR-IOV virtual functions on a PF (sriov_numvfs), idempotently.
#
# Usage: create-vfs.sh PF N [--force] [--dry-run] [--root DIR]
#   PF       the PF's PCI address (0000:03:00.0) or its netdev (enp3s0f0)
#   N        VFs wanted, 0 to sriov_totalvfs (0 removes them all)
#   --force  allowed to go through 0 when the PF has another count of VFs
#            (the kernel changes a non-zero count only through 0, and that
#            destroys the existing VFs: pods using them lose them)
#   --dry-run, --root DIR: see scripts/host/lib.sh
# A second run with the same N changes nothing and says so. The PF stays on
# its kernel driver: the SR-IOV device plugin finds VFs through it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

force=0 args=()
while (($#)); do
    case $1 in
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    --force) force=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) args+=("$1"); shift ;;
    esac
done
((${#args[@]} == 2)) || usage_error "needs PF and N"
pf=$(pf_address "${args[0]}")
want=${args[1]}
[[ $want =~ ^[0-9]+$ ]] || usage_error "N must be a number of VFs, not '$want'"
dev=$(pci_device "$pf")

[[ -e $(p "$dev/sriov_totalvfs") ]] ||
    die "$pf has no SR-IOV capability (no sriov_totalvfs): it is not an SR-IOV PF, or SR-IOV is off in the firmware setup, or its driver does not support it"
total=$(read_file "$dev/sriov_totalvfs")
cur=$(read_file "$dev/sriov_numvfs")
want=$((10#$want))
((want <= total)) || die "$pf supports at most $total VFs (sriov_totalvfs), not $want"
[[ -n $(link_name "$dev/driver") ]] ||
    die "$pf has no driver bound: the kernel creates VFs through the PF's driver (bind the PF to its kernel driver, such as ixgbe, i40e, ice or igb)"

if ((cur == want)); then
    finish "$pf already has $want VFs"
else
    if ((cur != 0 && want != 0)); then
        ((force)) || die "$pf has $cur VFs, not $want: the kernel changes the count only through 0, which destroys the $cur existing VFs (a pod using one loses it). Run again with --force to do that"
        say "$pf: $cur VFs -> 0 -> $want (--force)"
        sysfs_write 0 "$dev/sriov_numvfs"
    fi
    sysfs_write "$want" "$dev/sriov_numvfs"
    if ((!DRY_RUN)); then
        got=$(read_file "$dev/sriov_numvfs")
        ((got == want)) || die "$pf has $got VFs after asking for $want"
    fi
    finish ""
fi
if ((!DRY_RUN)); then
    for ((i = 0; i < want; i++)); do
        vf=$(link_name "$dev/virtfn$i")
        say "VF $i: ${vf:-?} (driver: $(link_name "/sys/bus/pci/devices/$vf/driver" | grep . || echo none))"
    done
fi
