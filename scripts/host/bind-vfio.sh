#!/usr/bin/env bash
# Binds PCI devices (VFs) to vfio-pci, for fastpath's userspace drivers and
# the SR-IOV device plugin's vfio-pci pools; idempotently.
#
# Usage: bind-vfio.sh ADDR... [--dry-run] [--root DIR]
#   ADDR     a PCI address such as 0000:03:10.0
#   --dry-run, --root DIR: see scripts/host/lib.sh
# Per device: driver_override = vfio-pci, unbind from its current driver,
# drivers_probe (the kernel's documented way to rebind one device without
# touching others of the same id); loads vfio-pci first if needed.
# Refuses a device without an IOMMU group unless vfio's no-IOMMU mode is
# already on: this script never turns it on.
# A device already on vfio-pci is left alone, and a second run says so.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

addrs=()
while (($#)); do
    case $1 in
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) addrs+=("$1"); shift ;;
    esac
done
((${#addrs[@]})) || usage_error "needs at least one PCI address"
devs=()
for a in "${addrs[@]}"; do devs+=("$(pci_device "$a")"); done

noiommu=$(read_file /sys/module/vfio/parameters/enable_unsafe_noiommu_mode)
# Everything is checked before anything changes.
for i in "${!addrs[@]}"; do
    a=${addrs[$i]} d=${devs[$i]}
    [[ $(link_name "$d/driver") == vfio-pci ]] && continue
    if [[ -z $(link_name "$d/iommu_group") && $noiommu != Y ]]; then
        die "$a has no IOMMU group: the IOMMU is off or absent, and vfio-pci needs one to isolate the device's DMA.
  Turn it on: VT-d/AMD-Vi in the firmware setup, and intel_iommu=on iommu=pt
  (Intel) on the kernel command line, then reboot.
  On a machine without an IOMMU (a VM without a virtual IOMMU), vfio's
  no-IOMMU mode works without DMA isolation: any device can then write
  anywhere in memory, and the kernel taints itself. If you accept that:
    modprobe vfio enable_unsafe_noiommu_mode=1
  (or echo Y > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode)
  and run this again. This script never turns it on by itself."
    fi
done

if [[ ! -e $(p /sys/bus/pci/drivers/vfio-pci) ]]; then
    change modprobe vfio-pci ||
        die "modprobe vfio-pci failed: this kernel has no vfio-pci module (CONFIG_VFIO_PCI)"
    ((DRY_RUN)) || [[ -e $(p /sys/bus/pci/drivers/vfio-pci) ]] ||
        die "vfio-pci is not registered after modprobe (no /sys/bus/pci/drivers/vfio-pci)"
fi

for i in "${!addrs[@]}"; do
    a=${addrs[$i]} d=${devs[$i]}
    drv=$(link_name "$d/driver")
    if [[ $drv == vfio-pci ]]; then
        say "$a is already on vfio-pci"
    else
        sysfs_write vfio-pci "$d/driver_override"
        [[ -z $drv ]] || sysfs_write "$a" "$d/driver/unbind"
        sysfs_write "$a" /sys/bus/pci/drivers_probe
        if ((!DRY_RUN)); then
            now=$(link_name "$d/driver")
            [[ $now == vfio-pci ]] || die "$a is on '${now:-no driver}' after drivers_probe, not vfio-pci (dmesg says why)"
        fi
    fi
    ((DRY_RUN)) && [[ $drv != vfio-pci ]] && continue
    group=$(link_name "$d/iommu_group")
    node=/dev/vfio/$group
    # vfio names a no-IOMMU group's node noiommu-<group>.
    [[ -n $group && -e $(p "/dev/vfio/noiommu-$group") ]] && node=/dev/vfio/noiommu-$group
    [[ -n $group ]] || node="no group node"
    say "$a: vfio-pci, IOMMU group ${group:-none}, $node"
    # A group is usable only when every device in it is on vfio-pci or on
    # no driver ("VFIO group is not viable"); this script binds only the
    # devices it is given.
    if [[ -n $group ]]; then
        for member in "$(p "/sys/kernel/iommu_groups/$group/devices")"/*; do
            [[ -e $member ]] || continue
            m=${member##*/} md=$(link_name "/sys/bus/pci/devices/${member##*/}/driver")
            [[ $m == "$a" || -z $md || $md == vfio-pci ]] && continue
            say "warning: $m shares IOMMU group $group and is on $md: the group is not usable until it is on vfio-pci or unbound"
        done
    fi
done
finish "every device is already on vfio-pci"
