#!/usr/bin/env bash
# Sourced by run.sh. The Debian trixie chroot that holds QEMU >= 11 (bookworm's
# QEMU has no vfio-user-pci client). Cached in $LAB/trixie; .ready marks a
# complete install. The bind mounts are made by chroot_mount and always
# removed by chroot_umount (run.sh's EXIT trap): a recursive delete of the
# chroot while /dev is bound would reach the host's /dev.

ROOT=$LAB/trixie
# Only these host directories are bound into the chroot; the server's socket
# lives in $RUN, bound at the same path inside.
BINDS=(/dev /proc /sys)

chroot_mount() {
    local d
    for d in "${BINDS[@]}" "$RUN"; do
        mkdir -p "$ROOT$d"
        mountpoint -q "$ROOT$d" || mount --bind "$d" "$ROOT$d"
    done
}

chroot_umount() {
    local d
    for d in "$RUN" /sys /proc /dev; do
        if mountpoint -q "$ROOT$d" 2>/dev/null; then
            umount "$ROOT$d" || umount -l "$ROOT$d" || say "WARNING: could not unmount $ROOT$d"
        fi
    done
}

# The mirror comes from the host's apt sources, so no host name is written here.
host_mirror() {
    local m
    m=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    [[ -n $m ]] || m=$(grep -hoE '^deb +\S+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    [[ -n $m ]] || die "cannot read a Debian mirror from the host's apt sources"
    echo "$m"
}

prepare_chroot() {
    if [[ -e $ROOT/.ready ]]; then
        chroot_mount
        return
    fi
    command -v debootstrap >/dev/null || "${APT[@]}" install -y debootstrap >/dev/null ||
        die "apt-get install debootstrap failed"
    local mirror
    mirror=$(host_mirror)
    if [[ ! -x $ROOT/usr/bin/apt-get ]]; then
        chroot_umount
        # Nothing is mounted below $ROOT now (checked above), so the delete
        # stays inside it.
        for d in "${BINDS[@]}" "$RUN"; do
            mountpoint -q "$ROOT$d" 2>/dev/null && die "$ROOT$d is still mounted; not deleting $ROOT"
        done
        rm -rf "$ROOT"
        say "debootstrap trixie from $mirror"
        timeout "$APT_TIMEOUT" debootstrap --variant=minbase trixie "$ROOT" "$mirror" >"$LAB/debootstrap.log" 2>&1 ||
            die "debootstrap failed (see $LAB/debootstrap.log)"
    fi
    echo "deb $mirror trixie-backports main" >"$ROOT/etc/apt/sources.list.d/backports.list"
    chroot_mount
    chroot "$ROOT" "${APT[@]}" update >/dev/null || die "apt-get update in the chroot failed"
    # trixie itself has QEMU 10.0 (no vfio-user-pci); backports has 10.1+.
    chroot "$ROOT" "${APT[@]}" install -y --no-install-recommends -t trixie-backports qemu-system-x86 >/dev/null ||
        die "apt-get install qemu-system-x86 in the chroot failed"
    touch "$ROOT/.ready"
}
