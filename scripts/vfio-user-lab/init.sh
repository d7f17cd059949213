#!/bin/sh
# /init of the vfio-user lab guest (busybox sh, PID 1). Copied into the
# initramfs by scripts/vfio-user-lab/run.sh; never run on the host.
#
# Finds the vfio-user function by the ids on the kernel command line,
# prints its ids and capability chain from config space, loads the stock
# driver the command line names (the probe runs inside insmod; iavf
# registers its netdev later, from its init task, so /init waits for
# one), prints the kernel log lines of the probe, and powers off.
# Kernel command line (run.sh):
#   vfu.id=<vendor:device>[,...]  the function to find (8086:10ed)
#   vfu.module=<name>             the driver: /lab/modules-<name>.list (ixgbevf)
#   vfu.wait=<s>                  how long to wait for its netdev (10)
#   vfu.rounds=<n> vfu.count=<n>  the frame exchange (0, 10000)
# Console protocol read by run.sh:
#   VFU-DEV <bdf> <vendor> <device> <class>     the function in sysfs
#   VFU-CAP <id> <offset>                        one per capability
#   VFU-LINK <current_link_speed>                present with a PCIe cap
#   VFU-INSMOD rc=<n> <module>                   one per module loaded
#   VFU-DRIVER <name>|none                       bound driver after insmod
#   VFU-NETWAIT <found|none> after <s>           waiting for the netdev
#   VFU-NETDEV <name> <mac>                      its netdev, if any
#   VFU-IFUP rc=<n>, VFU-CARRIER <0|1> <operstate> after <s>
#   VFU-FRAMES[-READY] round=<n> ...             lab-frames' own lines
#   VFU-ROUND <n> rc=<n>                         lab-frames' exit status
#   VFU-STATS rx <n> tx <n>                      the netdev's counters
#   VFU-DMESG <line>                             kernel log of the probe
#   VFU-DONE                                     last line
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 8 >/proc/sys/kernel/printk

# byte <file> <offset>: one config-space byte as a decimal number.
byte() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }

IDS=8086:10ed MOD=ixgbevf WAIT=10 ROUNDS=0 COUNT=10000
for a in $(cat /proc/cmdline); do
    case $a in
    vfu.id=*) IDS=${a#vfu.id=} ;;
    vfu.module=*) MOD=${a#vfu.module=} ;;
    vfu.wait=*) WAIT=${a#vfu.wait=} ;;
    vfu.rounds=*) ROUNDS=${a#vfu.rounds=} ;;
    vfu.count=*) COUNT=${a#vfu.count=} ;;
    esac
done

DEV=
for d in /sys/bus/pci/devices/*; do
    id="$(cat "$d/vendor"):$(cat "$d/device")"
    id=$(echo "$id" | sed 's/0x//g')
    case ",$IDS," in *",$id,"*) DEV=$d ;; esac
done
if [ -z "$DEV" ]; then
    echo "VFU-DEV none"
    for d in /sys/bus/pci/devices/*; do echo "VFU-INFO ${d##*/} $(cat "$d/vendor"):$(cat "$d/device")"; done
else
    echo "VFU-DEV ${DEV##*/} $(cat "$DEV/vendor") $(cat "$DEV/device") $(cat "$DEV/class")"
    # Walk the capability list (PCI 3.0, 6.7): pointer at 0x34, each
    # capability is <id, next>. At most 48 entries fit in 256 bytes.
    at=$(byte "$DEV/config" 52)
    n=0
    while [ "${at:-0}" -ne 0 ] && [ $n -lt 48 ]; do
        printf 'VFU-CAP 0x%02x 0x%02x\n' "$(byte "$DEV/config" "$at")" "$at"
        at=$(byte "$DEV/config" $((at + 1)))
        n=$((n + 1))
    done
    [ -r "$DEV/current_link_speed" ] && echo "VFU-LINK $(cat "$DEV/current_link_speed")"
fi

if [ -r "/lab/modules-$MOD.list" ]; then
    while read -r m; do
        insmod "$m"
        echo "VFU-INSMOD rc=$? ${m##*/}"
    done <"/lab/modules-$MOD.list"
else
    echo "VFU-INSMOD rc=127 no /lab/modules-$MOD.list"
fi
if [ -n "$DEV" ]; then
    echo "VFU-DRIVER $([ -e "$DEV/driver" ] && basename "$(readlink "$DEV/driver")" || echo none)"
    # ixgbevf registers its netdev inside the probe; iavf from its init
    # task once the PF answered VERSION and GET_VF_RESOURCES.
    i=0
    while ! ls "$DEV"/net/* >/dev/null 2>&1 && [ $i -lt $((WAIT * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    echo "VFU-NETWAIT $(ls "$DEV"/net/* >/dev/null 2>&1 && echo found || echo none) after $((i / 10)).$((i % 10)) s"
    for n in "$DEV"/net/*; do [ -e "$n" ] && echo "VFU-NETDEV ${n##*/} $(cat "$n/address")"; done
fi
IF=
[ -n "$DEV" ] && for n in "$DEV"/net/*; do [ -e "$n" ] && IF=${n##*/}; done
if [ -n "$IF" ]; then
    ip link set "$IF" up
    echo "VFU-IFUP rc=$?"
    # The VF's link comes from VFLINKS and the PF mailbox: the driver's
    # watchdog (every 2 s) reports it.
    i=0
    while [ "$(cat /sys/class/net/$IF/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    echo "VFU-CARRIER $(cat /sys/class/net/$IF/carrier 2>/dev/null) $(cat /sys/class/net/$IF/operstate) after $((i / 10)).$((i % 10)) s"
    # The frame exchange with our PMD on the PF's other VF: vfu.rounds
    # rounds of vfu.count frames each way; the host
    # injects a link flap in round 2 and a PF reset in round 3.
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        /bin/lab-frames guest --iface "$IF" --peer 02:09:00:00:00:02 --count "$COUNT" \
            --round "$r" --timeout 150
        echo "VFU-ROUND $r rc=$?"
        r=$((r + 1))
    done
    echo "VFU-STATS rx $(cat /sys/class/net/$IF/statistics/rx_packets) tx $(cat /sys/class/net/$IF/statistics/tx_packets)"
fi
# (Not the command line, which names the module.)
dmesg | grep -iE "$MOD|$(echo "$IDS" | tr , '|')|vfio" | grep -v 'ommand line' | sed 's/^/VFU-DMESG /'
echo "VFU-DONE"
poweroff -f
