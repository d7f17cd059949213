#!/usr/bin/env bash
# Gives PCI devices on vfio-pci back to a kernel driver; idempotently.
#
# Usage: unbind-vfio.sh ADDR... [--driver DRV] [--dry-run] [--root DIR]
#   ADDR      a PCI address such as 0000:03:10.0
#   --driver  the driver to bind (ixgbevf, iavf, igbvf, ...); without it,
#             the kernel picks the device's default driver (drivers_probe)
#   --dry-run, --root DIR: see scripts/host/lib.sh
# Per device: clear driver_override, unbind from vfio-pci, then bind DRV
# (loaded with modprobe if needed) or let the kernel probe. A device
# already off vfio-pci is left alone, and a second run says so. A device some process holds (fastpath running, a pod)
# cannot be unbound: the unbind waits for it, so stop that first.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

addrs=() driver=''
while (($#)); do
    case $1 in
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    --driver) driver=${2:?--driver needs a driver name}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) addrs+=("$1"); shift ;;
    esac
done
((${#addrs[@]})) || usage_error "needs at least one PCI address"
[[ -z $driver || $driver =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "'$driver' is not a driver name"
[[ $driver != vfio-pci ]] || usage_error "--driver vfio-pci: use bind-vfio.sh"
devs=()
for a in "${addrs[@]}"; do devs+=("$(pci_device "$a")"); done

if [[ -n $driver && ! -e $(p "/sys/bus/pci/drivers/$driver") ]]; then
    change modprobe "$driver" || die "modprobe $driver failed: no such driver in this kernel"
    ((DRY_RUN)) || [[ -e $(p "/sys/bus/pci/drivers/$driver") ]] ||
        die "driver $driver is not registered after modprobe (no /sys/bus/pci/drivers/$driver)"
fi

for i in "${!addrs[@]}"; do
    a=${addrs[$i]} d=${devs[$i]}
    drv=$(link_name "$d/driver")
    override=$(read_file "$d/driver_override")
    if [[ $drv != vfio-pci ]]; then
        note=''
        [[ -z $driver || $drv == "$driver" ]] || note=" (not $driver: left alone, this script only takes devices off vfio-pci)"
        say "$a is not on vfio-pci (driver: ${drv:-none})$note"
        # Off vfio-pci, but the next probe would take it back there.
        [[ $override != vfio-pci ]] || sysfs_write "" "$d/driver_override"
        continue
    fi
    [[ $override != vfio-pci ]] || sysfs_write "" "$d/driver_override"
    sysfs_write "$a" "$d/driver/unbind"
    if [[ -n $driver ]]; then
        sysfs_write "$a" "/sys/bus/pci/drivers/$driver/bind"
    else
        sysfs_write "$a" /sys/bus/pci/drivers_probe
    fi
    ((DRY_RUN)) && continue
    now=$(link_name "$d/driver")
    if [[ -n $driver && $now != "$driver" ]]; then
        die "$a is on '${now:-no driver}' after binding $driver (dmesg says why)"
    fi
    say "$a: now on ${now:-no driver}"
done
finish "no device is on vfio-pci"
