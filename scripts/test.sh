#!/usr/bin/env bash
# The whole test suite, as CI runs it: format, lints, unit / property /
# integration tests, and the loom model checks of the lock-free ring and of
# the QSBR publication (drivers::rcu).
#
# A test that cannot run on this machine (no root, no hugepages, no
# CAP_NET_RAW, ...) says so through drivers::skip_test!: it is counted as
# skipped, not passed, and listed by name and reason above the closing tally
# `tests: N passed, N failed, N skipped` (.ci/run parses that line).
#
# As root (CI) nothing may skip: the script reserves 2 MB hugepages (raising,
# never lowering, /proc/sys/vm/nr_hugepages to $HUGEPAGES, or further if
# fewer than the tests need would be free), stops with an error if it
# cannot, or if hugepage overcommit is on, and sets FASTPATH_REQUIRE_ALL=1,
# which turns every skip into a failure. Without root the skips are allowed,
# and shown.
# Env: HUGEPAGES (256), SKIP_LINT=1, SKIP_LOOM=1,
#      FASTPATH_REQUIRE_ALL (1 as root, else 0; set it to 1 to require all).
set -euo pipefail
cd "$(dirname "$0")/.."

HUGEPAGES=${HUGEPAGES:-256}
# Free 2M pages the tests need at once: the forwarder test's pool (16), the
# memory and vfio tests (3 + 1), with room for tests running in parallel.
NEED_2M=64
step() { printf '\n== %s\n' "$*"; }
die() {
    echo "scripts/test.sh: $*" >&2
    exit 1
}

if [[ $(id -u) -eq 0 ]]; then
    export FASTPATH_REQUIRE_ALL=${FASTPATH_REQUIRE_ALL:-1}
    nr=/proc/sys/vm/nr_hugepages
    [[ -w $nr ]] || die "running as root, but $nr is not writable (a container without CAP_SYS_ADMIN?): the hugepage tests cannot run"
    free_2m() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }
    # $HUGEPAGES, or more if pages in use elsewhere leave fewer than the
    # tests need free.
    cur=$(cat "$nr")
    want=$((cur - $(free_2m) + NEED_2M))
    ((want > HUGEPAGES)) || want=$HUGEPAGES
    if ((cur < want)); then
        echo "$want" >"$nr" || die "could not write $want to $nr"
    fi
    free=$(free_2m)
    if ((free < NEED_2M)); then
        die "only $free 2M hugepages free after asking for $want in all (the tests need $NEED_2M free): memory is too small or too fragmented; free some, or reserve hugepages at boot (hugepages=$want), then run again"
    fi
    # With overcommit the kernel grants pages beyond the free count, and
    # the tests that check the errors for too few hugepages cannot run.
    for f in /sys/kernel/mm/hugepages/hugepages-*/nr_overcommit_hugepages; do
        [[ -e $f ]] || continue
        (($(cat "$f") == 0)) || die "hugepage overcommit is enabled ($f = $(cat "$f")): the tests of the too-few-hugepages errors cannot run; echo 0 > $f"
    done
    echo "hugepages: $(cat "$nr") reserved, $free free; FASTPATH_REQUIRE_ALL=$FASTPATH_REQUIRE_ALL (a test that cannot run fails)"
else
    export FASTPATH_REQUIRE_ALL=${FASTPATH_REQUIRE_ALL:-0}
    echo "not root: tests that need root, hugepages or CAP_NET_RAW may skip (listed at the end); FASTPATH_REQUIRE_ALL=$FASTPATH_REQUIRE_ALL"
fi

if [[ -z "${SKIP_LINT:-}" ]]; then
    step "cargo fmt --check"
    cargo fmt --all -- --check
    step "cargo clippy --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
    # The VM lab's tests exist only with --cfg fastpath_lab (the lab runs
    # them); lint them in that build too, in a target directory of its own
    # so that neither build invalidates the other.
    step "cargo clippy of the VM lab tests (--cfg fastpath_lab)"
    RUSTFLAGS="--cfg fastpath_lab" CARGO_TARGET_DIR=target/lab-clippy \
        cargo clippy --workspace --test 'lab_*' -- -D warnings
    # The `vfio-user` feature's own code paths (the vfio-user lab's server,
    # an example that needs the feature) are built by no other step.
    step "cargo clippy -p drivers --features vfio-user"
    cargo clippy -p drivers --features vfio-user --all-targets -- -D warnings
    # fastpath without its default `sim` feature (no simulated ports).
    step "cargo clippy -p fastpath --no-default-features"
    cargo clippy -p fastpath --no-default-features --all-targets -- -D warnings
fi

log=$(mktemp /tmp/fastpath-test.XXXXXX)
skips=$(mktemp /tmp/fastpath-skips.XXXXXX)
trap 'rm -f "$log" "$skips"' EXIT
# drivers::skip_test! appends one line per skipped test here.
export FASTPATH_SKIP_LOG=$skips
rc=0

if [[ -z "${SKIP_LOOM:-}" ]]; then
    step "loom model checks (drivers/tests/loom_ring.rs, drivers/tests/loom_rcu.rs)"
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p drivers --release --test loom_ring --test loom_rcu 2>&1 | tee -a "$log" || rc=$?
fi

step "cargo test --workspace"
# --no-fail-fast: a failing test binary does not stop the others, so the
# tally counts every test.
cargo test --workspace --no-fail-fast 2>&1 | tee -a "$log" || rc=$?

# One closing tally over every test binary (loom included). A test that
# skipped returned early, so libtest counted it passed: it moves from passed
# to skipped. #[ignore]d tests (none in this tree) count as skipped too.
# Each skipped test is listed first, with its reason.
awk -v skiplog="$skips" '
    /^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i
            if ($(i+1) ~ /^failed/) f += $i
            if ($(i+1) ~ /^ignored/) s += $i
        }
    }
    /^test .* \.\.\. ignored/ {
        name = $2; why = $0; sub(/^.* \.\.\. ignored(, )?/, "", why)
        ignored[++ni] = "IGNORED " name " : " (why == "" ? "#[ignore]" : why)
    }
    END {
        while ((getline line < skiplog) > 0) { skipped[++ns] = line }
        if (ni + ns > 0) printf "\nskipped tests (%d):\n", ni + ns
        for (i = 1; i <= ni; i++) print "  " ignored[i]
        for (i = 1; i <= ns; i++) print "  " skipped[i]
        printf "\ntests: %d passed, %d failed, %d skipped\n", p - ns, f, s + ns
    }' "$log"
exit "$rc"
