# shellcheck shell=bash
# Shared by the host set-up scripts in scripts/host/ (sourced, not run).
#
# Every script takes:
#   --dry-run    print what would be written or run, change nothing
#   --root DIR   (or SYSFS_ROOT=DIR) find /sys and /proc under DIR: for the
#                tests, which build a fake tree (scripts/host/test.sh);
#                never needed on a real host
# Writes to sysfs go through sysfs_write, commands that change the host
# through change, so that --dry-run covers both.

ROOT=${SYSFS_ROOT:-}
DRY_RUN=0
CHANGED=0
PROG=${0##*/}

say() { echo "$PROG: $*"; }
die() {
    echo "$PROG: error: $*" >&2
    exit 1
}
usage_error() {
    echo "$PROG: $*" >&2
    echo "(see $PROG --help)" >&2
    exit 2
}

# The path of a host file (/sys/..., /proc/...) under the root.
p() { echo "$ROOT$1"; }

# sysfs_write VALUE FILE: writes VALUE to FILE (a host path), or says it
# would. A refused write (EBUSY, EINVAL, ...) stops the script with the
# kernel's reason.
sysfs_write() {
    local value=$1 file=$2 err
    CHANGED=1
    if ((DRY_RUN)); then
        say "would write '$value' to $file"
        return
    fi
    say "writing '$value' to $file"
    if ! err=$( { printf '%s\n' "$value" >"$(p "$file")"; } 2>&1); then
        die "the kernel refused '$value' in $file: ${err##*: }"
    fi
    # The tests' fake kernel reacts to writes as the real one would.
    if [[ -n $ROOT && -x $ROOT/.fake-kernel ]]; then
        "$ROOT/.fake-kernel" "$ROOT" "$file" "$value" ||
            die "the kernel refused '$value' in $file"
    fi
}

# change CMD...: runs a command that changes the host, or says it would.
change() {
    CHANGED=1
    if ((DRY_RUN)); then
        say "would run: $*"
        return
    fi
    say "running: $*"
    "$@"
}

# read_file HOSTPATH: the file's content, or nothing when it is absent.
read_file() {
    local f
    f=$(p "$1")
    [[ -r $f ]] && cat "$f"
    return 0
}

# link_name HOSTPATH: the last component of a symlink's target (a driver's
# or an IOMMU group's name), or nothing.
link_name() {
    local f
    f=$(p "$1")
    [[ -L $f ]] && basename "$(readlink "$f")"
    return 0
}

# A PCI address in the kernel's form: domain:bus:device.function.
is_pci_address() { [[ $1 =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]]; }

# pci_device ADDR: checks that the device exists; prints its sysfs path.
pci_device() {
    is_pci_address "$1" || usage_error "'$1' is not a PCI address such as 0000:03:00.0 (lspci -D lists them)"
    [[ -e $(p "/sys/bus/pci/devices/$1") ]] || die "no PCI device $1 (lspci -D lists the devices)"
    echo "/sys/bus/pci/devices/$1"
}

# pf_address PF: a PCI address, or the PF's netdev name, to its address.
pf_address() {
    local dev
    if is_pci_address "$1"; then
        echo "$1"
        return
    fi
    dev=$(p "/sys/class/net/$1/device")
    [[ -e $dev ]] || die "'$1' is neither a PCI address nor a network interface with a PCI device"
    basename "$(readlink -f "$dev")"
}

# finish: the closing line of an idempotent run.
finish() {
    if ((CHANGED == 0)); then
        say "nothing to do: $1"
    elif ((DRY_RUN)); then
        say "dry run: nothing was changed"
    fi
}
