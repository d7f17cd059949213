#!/usr/bin/env bash
# Builds `lab-frames` (drivers/src/bin/lab-frames.rs, the guest's end of
# the lab's frame exchange) as a statically linked x86_64 executable for
# the busybox initramfs, which has no libc. Prints the binary's path as the
# last line of stdout.
#
#   scripts/vfio-user-lab/build-guest-tool.sh            # path on stdout
#   . scripts/vfio-user-lab/build-guest-tool.sh --lib    # define build_guest_tool only
#
# glibc's static libc.a (libc6-dev, which every Rust toolchain on Debian
# has) with `-C target-feature=+crt-static`. The explicit --target keeps
# RUSTFLAGS off the build scripts and proc-macros (thiserror's), which
# cannot be static. Its own target directory, so that neither this build
# nor the workspace's invalidates the other. The release profile without
# its fat LTO (minutes on a small machine, for a tool that waits on a TCG
# guest anyway), stripped for the initramfs.
# Env: GUEST_TOOL_TARGET_DIR (<workspace target dir>/guest-tool).

build_guest_tool() {
    local repo target_dir bin
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    target_dir=${GUEST_TOOL_TARGET_DIR:-$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/guest-tool}
    (cd "$repo" &&
        RUSTFLAGS='-C target-feature=+crt-static' \
            CARGO_PROFILE_RELEASE_LTO=false \
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
            CARGO_PROFILE_RELEASE_DEBUG=0 \
            CARGO_PROFILE_RELEASE_STRIP=symbols \
            cargo build -q --release -p drivers --bin lab-frames \
            --target x86_64-unknown-linux-gnu --target-dir "$target_dir") >&2 || {
        echo "build-guest-tool: cargo build of lab-frames failed" >&2
        return 1
    }
    bin=$target_dir/x86_64-unknown-linux-gnu/release/lab-frames
    # `file` says "static-pie linked" or "statically linked"; either needs
    # no loader and no libc in the guest.
    if ! file -L "$bin" | grep -qE 'static(ally|-pie) linked'; then
        echo "build-guest-tool: $bin is not static: $(file -L "$bin")" >&2
        return 1
    fi
    echo "$bin"
}

if [[ ${1:-} != --lib ]]; then
    set -euo pipefail
    build_guest_tool
fi
