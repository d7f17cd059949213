#!/usr/bin/env bash
# Reserves hugepages (nr_hugepages through sysfs), checks that the kernel
# gave them all, and mounts hugetlbfs; idempotently.
#
# Usage: hugepages.sh --size 2M|1G --count N [--node N] [--mount DIR]
#                     [--dry-run] [--root DIR]
#   --size    page size: 2M or 1G
#   --count   pages wanted in all (on the node, with --node); lowering it
#             frees only pages nobody uses
#   --node    reserve on this NUMA node (the VFs' and the fast path's
#             cores' node), instead of spread by the kernel
#   --mount   also mount hugetlbfs of this page size on DIR (such as
#             /dev/hugepages) when nothing is mounted there
#   --dry-run, --root DIR: see scripts/host/lib.sh
# 1G pages are rarely free after boot (memory is fragmented): reserve them
# on the kernel command line (default_hugepagesz=1G hugepagesz=1G
# hugepages=N). The kubelet counts pages reserved after it started only
# once restarted (anchors.md 3.4).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

size='' count='' node='' mnt=''
while (($#)); do
    case $1 in
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    --size) size=${2:?--size needs 2M or 1G}; shift 2 ;;
    --count) count=${2:?--count needs a number}; shift 2 ;;
    --node) node=${2:?--node needs a NUMA node number}; shift 2 ;;
    --mount) mnt=${2:?--mount needs a directory}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    *) usage_error "unknown argument $1" ;;
    esac
done
case $size in
2M) kb=2048 ;;
1G) kb=1048576 ;;
'') usage_error "--size is required (2M or 1G)" ;;
*) usage_error "--size takes 2M or 1G, not '$size'" ;;
esac
[[ $count =~ ^[0-9]+$ ]] || usage_error "--count takes a number of pages, not '${count:-nothing}'"
count=$((10#$count))
[[ -z $node || $node =~ ^[0-9]+$ ]] || usage_error "--node takes a NUMA node number, not '$node'"
[[ -z $mnt || $mnt == /* ]] || usage_error "--mount takes an absolute directory, not '$mnt'"

if [[ -n $node ]]; then
    [[ -e $(p "/sys/devices/system/node/node$node") ]] ||
        die "no NUMA node $node (nodes: $(cd "$(p /sys/devices/system/node)" 2>/dev/null && echo node* | sed 's/node//g'))"
    dir=/sys/devices/system/node/node$node/hugepages/hugepages-${kb}kB
    where="on node $node"
else
    dir=/sys/kernel/mm/hugepages/hugepages-${kb}kB
    where="in all"
fi
if [[ ! -e $(p "$dir/nr_hugepages") ]]; then
    sizes=$(cd "$(p /sys/kernel/mm/hugepages)" 2>/dev/null && echo hugepages-* | sed 's/hugepages-//g')
    die "this kernel or CPU has no $size hugepages ($dir missing; sizes it has: ${sizes:-none})"
fi

cur=$(read_file "$dir/nr_hugepages")
if ((cur == count)); then
    say "$count $size pages $where already reserved ($(read_file "$dir/free_hugepages") free)"
else
    sysfs_write "$count" "$dir/nr_hugepages"
    if ((!DRY_RUN)); then
        got=$(read_file "$dir/nr_hugepages")
        if ((got != count)); then
            die "the kernel gave $got of the $count $size pages asked $where (was $cur): not enough contiguous free memory. Free some, or reserve them at boot: hugepagesz=$size hugepages=$count on the kernel command line. $got are reserved now; hugepages.sh --size $size --count $cur goes back"
        fi
        say "$count $size pages $where reserved ($(read_file "$dir/free_hugepages") free); a running kubelet reports them only once restarted"
    fi
fi

if [[ -n $mnt ]]; then
    # /proc/mounts: "nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0"
    target=$(p "$mnt")
    existing=$(awk -v t="$target" '$2 == t { print $3 " " $4 }' "$(p /proc/mounts)" | tail -n 1)
    if [[ -z $existing ]]; then
        [[ -d $target ]] || change mkdir -p "$target"
        change mount -t hugetlbfs -o "pagesize=$size" nodev "$target"
    elif [[ $existing != hugetlbfs* ]]; then
        die "$mnt is already a mount point of another file system (${existing%% *}): choose another directory"
    elif [[ $existing != *pagesize=$size* ]]; then
        die "$mnt is a hugetlbfs of another page size (${existing#* }): mount $size pages elsewhere, or umount $mnt first"
    else
        say "hugetlbfs ($size pages) already mounted on $mnt"
    fi
fi
finish "the $size pages and the mount are as asked"
