#!/usr/bin/env bash
# Builds the fastpath runtime image (container/Containerfile) with buildah,
# without a daemon: the static binary is built on the host first (no base
# image can be pulled, so nothing is compiled inside the build), then the
# build context is staged in a temporary directory.
#
# Usage: scripts/container-build.sh [--binary PATH] [--tag IMAGE]
#   --binary PATH  use this static fastpath instead of building one
#   --tag IMAGE    image name (localhost/fastpath:dev)
# Env: BUILDAH_STORAGE_DRIVER (vfs: works without overlay support),
#      BUSYBOX (/bin/busybox: Debian's busybox-static).
# Needs buildah and busybox-static (scripts/container-test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

binary='' tag=localhost/fastpath:dev
while (($#)); do
    case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --tag) tag=${2:?--tag needs an image name}; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "container-build: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
storage=${BUILDAH_STORAGE_DRIVER:-vfs}
busybox=${BUSYBOX:-/bin/busybox}
die() {
    echo "container-build: $*" >&2
    exit 1
}

command -v buildah >/dev/null || die "buildah is missing: apt-get install buildah (or run scripts/container-test.sh, which installs it)"

if [[ -z $binary ]]; then
    # crt-static on the gnu target gives a static-pie binary with the stock
    # toolchain (shared/reference/containers.md): no musl target needed.
    # With --target, RUSTFLAGS leaves build scripts and proc macros alone,
    # and the output goes to target/<triple>/, apart from other builds.
    RUSTFLAGS='-C target-feature=+crt-static' \
        cargo build --release --locked --target x86_64-unknown-linux-gnu -p fastpath
    binary=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/fastpath
fi
[[ -x $binary ]] || die "$binary is not an executable file"
# A FROM scratch image has no dynamic loader: a dynamic binary would fail
# there with a bare 'no such file or directory'. ldd (libc-bin) tells: a
# static-pie is "statically linked", a plain static one "not a dynamic
# executable".
is_static() {
    local out
    out=$(ldd "$1" 2>&1) || true
    [[ $out == *"statically linked"* || $out == *"not a dynamic executable"* ]]
}
is_static "$binary" ||
    die "$binary is dynamically linked: build it with RUSTFLAGS='-C target-feature=+crt-static' and --target x86_64-unknown-linux-gnu"
[[ -x $busybox ]] || die "$busybox is missing: apt-get install busybox-static"
is_static "$busybox" || die "$busybox is not static: apt-get install busybox-static"

ctx=$(mktemp -d /tmp/fastpath-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
# The release profile keeps debug info (for perf): 24 MB, of which the
# image needs 5. Stripped here, on a copy (binutils, which gcc brings).
if command -v strip >/dev/null; then
    strip --strip-debug -o "$ctx/fastpath" "$binary"
else
    echo "container-build: no strip (binutils): the image keeps the debug info" >&2
    cp "$binary" "$ctx/fastpath"
fi
cp config/fast-path.env.sample "$ctx/fast-path.env"
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/run/fastpath" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"
cp "$busybox" "$ctx/rootfs/bin/busybox"
# The applets an operator needs to look at the pod's set-up (see the
# Containerfile); no network clients or servers.
for applet in sh ash cat ls grep head tail sed awk find stat readlink \
    ps top ip env id test [ sleep timeout wc cut tr printf echo df free \
    nproc taskset uname dmesg; do
    ln -s busybox "$ctx/rootfs/bin/$applet"
done

buildah --storage-driver "$storage" bud --layers=false -f container/Containerfile -t "$tag" "$ctx"
echo "container-build: built $tag (fastpath $(du -h "$ctx/fastpath" | cut -f1), busybox $("$busybox" | head -1 | cut -d' ' -f2))"
