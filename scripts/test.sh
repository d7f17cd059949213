#!/usr/bin/env bash
# The whole test suite, as CI runs it: format, lints, unit / property /
# integration tests, and the loom model checks of the lock-free ring.
#
# As root it reserves 2 MB hugepages (raising, never lowering
# /proc/sys/vm/nr_hugepages to $HUGEPAGES) so the hugepage tests run for
# real; without root or hugepages those tests say "skipped" and pass.
# Env: HUGEPAGES (256), SKIP_LINT=1, SKIP_LOOM=1.
set -euo pipefail
cd "$(dirname "$0")/.."

HUGEPAGES=${HUGEPAGES:-256}
step() { printf '\n== %s\n' "$*"; }

if [[ $(id -u) -eq 0 && -w /proc/sys/vm/nr_hugepages ]]; then
    cur=$(cat /proc/sys/vm/nr_hugepages)
    if (( cur < HUGEPAGES )); then
        echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages || true
    fi
    free=$(awk '/^HugePages_Free/{print $2}' /proc/meminfo)
    if (( free >= 64 )); then
        # The hugepage tests must then really run, not skip.
        export FASTPATH_REQUIRE_HUGEPAGES=1
    fi
    echo "hugepages: $(cat /proc/sys/vm/nr_hugepages) reserved, $free free (FASTPATH_REQUIRE_HUGEPAGES=${FASTPATH_REQUIRE_HUGEPAGES:-0})"
else
    echo "hugepages: not root, hugepage tests may skip"
fi

if [[ -z "${SKIP_LINT:-}" ]]; then
    step "cargo fmt --check"
    cargo fmt --all -- --check
    step "cargo clippy --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
fi

log=$(mktemp /tmp/fastpath-test.XXXXXX)
trap 'rm -f "$log"' EXIT

if [[ -z "${SKIP_LOOM:-}" ]]; then
    step "loom model checks (drivers/tests/loom_ring.rs)"
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p drivers --release --test loom_ring 2>&1 | tee -a "$log"
fi

step "cargo test --workspace"
rc=0
cargo test --workspace 2>&1 | tee -a "$log" || rc=$?

# One closing line over every test binary (loom included).
awk '/^test result:/ { for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$rc"
