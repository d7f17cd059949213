#!/usr/bin/env bash
# compare-lpm.sh -- our IPv4 FIB (bench/src/bin/lpm-bench.rs, fastpath::fib's
# DIR-24-8) side by side with DPDK 22.11's own lpm_perf_autotest (rte_lpm) and
# fib_perf_autotest (rte_fib, DIR-24-8) from dpdk-test, on this machine, on one
# CPU, interleaved rounds. Both sides build a generated table of about 1.08 M
# routes with the same prefix-length counts (DPDK's from its large_route_table
# generator, ours from lpm-bench's fixed seed; the tables are not identical:
# ours misses 15.3 % of random lookups, DPDK's 12.5 %).
#
# Needs root (apt-get dpdk-dev, 2 MB hugepages for DPDK's --in-memory heap).
# Usage: sudo scripts/compare-lpm.sh          (about 2 minutes a round)
# Env knobs: ROUNDS=3 CPU=1 QUICK=1 (1 round, lpm-bench --quick)
#   LPM_BENCH=/path/to/lpm-bench (default: cargo build --release -p bench)
#   TOTAL_LIMIT=3600 (seconds bound on the whole script)
# Per-round lines:  run N dpdk_lpm lookup=.. bulk=.. add=.. delete=..
#                   run N dpdk_fib bulk=.. add=.. delete=..
#                   run N ours lookup=.. bulk=.. add=.. delete=..
# Last line:  lpm rounds=.. ours_bulk=.. dpdk_lpm_bulk=.. ratio_bulk_lpm=..
#             ours_lookup=.. dpdk_lpm_lookup=.. ratio_lookup_lpm=..
#             ours_add=.. dpdk_fib_add=.. ratio_add_fib=.. dpdk_lpm_add=.. ...
# All figures are TSC cycles (per address looked up, per route added or
# deleted), medians over the rounds; ratio = ours / DPDK (< 1: ours takes
# fewer cycles).

if [[ -z "${_LPM_BOUNDED:-}" ]]; then       # bound everything: re-exec under timeout
    export _LPM_BOUNDED=1
    exec timeout --foreground -k 20 "${TOTAL_LIMIT:-3600}" bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C
[[ $# -eq 0 ]] || { echo "usage: [ROUNDS=N] [CPU=C] [QUICK=1] $0" >&2; exit 2; }
QUICK=${QUICK:-0}
[[ $QUICK != 0 ]] && ROUNDS=${ROUNDS:-1}
ROUNDS=${ROUNDS:-3} CPU=${CPU:-1}
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "ROUNDS must be 1 to 99" >&2; exit 2; }
[[ $CPU =~ ^[0-9]+$ ]] || { echo "CPU must be one CPU number" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PFX=fplpm$$                                  # our own DPDK --file-prefix
WORK=$(mktemp -d /tmp/compare-lpm.XXXXXX)
RUN_LIMIT=900                                # per-process timeout (s)
# shellcheck source=scripts/lib/side-by-side.sh
. "$ROOT/scripts/lib/side-by-side.sh"          # log, die, apt_install_missing
trap remove_work_and_rundir EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, DPDK's EAL, hugepages)"
[[ -d /sys/devices/system/cpu/cpu$CPU ]] || die "CPU $CPU does not exist"
apt_install_missing "$WORK/apt.log" dpdk-dev || die "apt-get install failed"
command -v dpdk-test >/dev/null || die "dpdk-test not found (package dpdk-dev)"
# lpm_perf_autotest's table and rte_fib's DIR-24-8 need about 600 MB of
# DPDK's heap; 512 pages is what shared/reference/peers/dpdk/micro/run.sh used.
need=512
cur=$(cat /proc/sys/vm/nr_hugepages)
((cur >= need)) || { echo "$need" >/proc/sys/vm/nr_hugepages; log "nr_hugepages $cur -> $(cat /proc/sys/vm/nr_hugepages)"; }
free_pages=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
((free_pages >= need)) || die "only $free_pages free 2 MB hugepages, DPDK needs $need"

if [[ -z "${LPM_BENCH:-}" ]]; then
    export PATH="$PATH:${HOME:-/root}/.cargo/bin"
    log "cargo build --release -p bench --bin lpm-bench"
    (cd "$ROOT" && timeout 1800 cargo build --release -p bench --bin lpm-bench) >&2 ||
        die "cargo build failed"
fi
LPM_BENCH=${LPM_BENCH:-$ROOT/target/release/lpm-bench}
[[ -x $LPM_BENCH ]] || die "no lpm-bench at $LPM_BENCH"

EAL=(-l "$CPU" --no-pci --no-telemetry --in-memory --file-prefix="$PFX" --log-level=lib.eal:warning)
ours_args=(--cpus "$CPU")
[[ $QUICK != 0 ]] && ours_args+=(--quick)

# field FILE REGEX: the first number after REGEX in FILE, or "" if none.
field() { sed -n "s/.*$2[^0-9]*\([0-9][0-9.]*\).*/\1/p" "$1" | head -n 1; }
declare -A vals
keep() { # KEY VALUE: one round's figure; a missing one stops the script
    [[ -n "$2" ]] || die "no figure for $1 (logs in $WORK)"
    vals[$1]+="$2 "
}

run_dpdk_lpm() {
    local out=$WORK/dpdk-lpm.$1.log
    echo lpm_perf_autotest | timeout "$RUN_LIMIT" dpdk-test "${EAL[@]}" >"$out" 2>&1 ||
        die "dpdk-test lpm_perf_autotest failed: $(tail -n 3 "$out")"
    local l b a d
    l=$(field "$out" "Average LPM Lookup:") b=$(field "$out" "BULK LPM Lookup:")
    a=$(field "$out" "Average LPM Add:") d=$(field "$out" "Average LPM Delete:")
    keep dpdk_lpm_lookup "$l"; keep dpdk_lpm_bulk "$b"; keep dpdk_lpm_add "$a"; keep dpdk_lpm_delete "$d"
    echo "run $1 dpdk_lpm lookup=$l bulk=$b add=$a delete=$d"
}
run_dpdk_fib() {
    local out=$WORK/dpdk-fib.$1.log
    echo fib_perf_autotest | timeout "$RUN_LIMIT" dpdk-test "${EAL[@]}" >"$out" 2>&1 ||
        die "dpdk-test fib_perf_autotest failed: $(tail -n 3 "$out")"
    local b a d
    b=$(field "$out" "BULK FIB Lookup:") a=$(field "$out" "Average FIB Add:") d=$(field "$out" "Average FIB Delete:")
    keep dpdk_fib_bulk "$b"; keep dpdk_fib_add "$a"; keep dpdk_fib_delete "$d"
    echo "run $1 dpdk_fib bulk=$b add=$a delete=$d"
}
run_ours() {
    local out=$WORK/ours.$1.log
    timeout "$RUN_LIMIT" "$LPM_BENCH" "${ours_args[@]}" >"$out" 2>&1 ||
        die "lpm-bench failed (exit $?): $(tail -n 3 "$out")"
    local l b a d
    l=$(field "$out" "lpm case=lookup value=") b=$(field "$out" "lpm case=bulk value=")
    a=$(field "$out" "lpm case=add value=") d=$(field "$out" "lpm case=delete value=")
    keep ours_lookup "$l"; keep ours_bulk "$b"; keep ours_add "$a"; keep ours_delete "$d"
    echo "run $1 ours lookup=$l bulk=$b add=$a delete=$d"
}
median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'; }

log "rounds=$ROUNDS cpu=$CPU quick=$QUICK load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        run_dpdk_lpm "$r"; run_dpdk_fib "$r"; run_ours "$r"
    else
        run_ours "$r"; run_dpdk_fib "$r"; run_dpdk_lpm "$r"
    fi
done
declare -A m
for k in "${!vals[@]}"; do m[$k]=$(median <<<"${vals[$k]}"); done
log "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "lpm rounds=$ROUNDS" \
    "ours_bulk=${m[ours_bulk]} dpdk_lpm_bulk=${m[dpdk_lpm_bulk]} ratio_bulk_lpm=$(ratio "${m[ours_bulk]}" "${m[dpdk_lpm_bulk]}")" \
    "dpdk_fib_bulk=${m[dpdk_fib_bulk]} ratio_bulk_fib=$(ratio "${m[ours_bulk]}" "${m[dpdk_fib_bulk]}")" \
    "ours_lookup=${m[ours_lookup]} dpdk_lpm_lookup=${m[dpdk_lpm_lookup]} ratio_lookup_lpm=$(ratio "${m[ours_lookup]}" "${m[dpdk_lpm_lookup]}")" \
    "ours_add=${m[ours_add]} dpdk_fib_add=${m[dpdk_fib_add]} ratio_add_fib=$(ratio "${m[ours_add]}" "${m[dpdk_fib_add]}")" \
    "dpdk_lpm_add=${m[dpdk_lpm_add]} ratio_add_lpm=$(ratio "${m[ours_add]}" "${m[dpdk_lpm_add]}")" \
    "ours_delete=${m[ours_delete]} dpdk_fib_delete=${m[dpdk_fib_delete]} ratio_delete_fib=$(ratio "${m[ours_delete]}" "${m[dpdk_fib_delete]}")"
