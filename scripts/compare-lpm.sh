#!/usr/bin/env bash
# compare-lpm.sh -- our FIBs (bench/src/bin/lpm-bench/, fastpath::fib) side by
# side with DPDK 22.11's own perf autotests from dpdk-test, on this machine, on
# one CPU, interleaved rounds:
#   IPv4: ours (DIR-24-8) against lpm_perf_autotest (rte_lpm) and
#         fib_perf_autotest (rte_fib, DIR-24-8). Both sides build a generated
#         table of about 1.08 M routes with the same prefix-length counts
#         (DPDK's from its large_route_table generator, ours from lpm-bench's
#         fixed seed; the tables are not identical: ours misses 15.3 % of random
#         lookups, DPDK's 12.5 %).
#   IPv6: ours (lpm-bench --ipv6: 24-bit first level, 8-bit groups) against
#         lpm6_perf_autotest (rte_lpm6) and fib6_perf_autotest (rte_fib6 trie).
#         DPDK's table is a fixed list of 1,000 routes (lengths /1 to /128);
#         ours has the same count per length, random bits from a fixed seed.
#         Both look up 100,000 addresses inside the routes (no misses), 1,024
#         passes, the bulk case as one call of 100,000.
#
# Needs root (apt-get dpdk-dev, 2 MB hugepages for DPDK's --in-memory heap).
# Usage: sudo scripts/compare-lpm.sh          (about 2.5 minutes a round)
# Env knobs: ROUNDS=3 CPU=1 QUICK=1 (1 round, lpm-bench --quick)
#   FAMILY=all (or 4, or 6: which tables to compare)
#   LPM_BENCH=/path/to/lpm-bench (default: cargo build --release -p bench)
#   TOTAL_LIMIT=3600 (seconds bound on the whole script)
# Per-round lines:  run N dpdk_lpm lookup=.. bulk=.. add=.. delete=..
#                   run N dpdk_fib bulk=.. add=.. delete=..
#                   run N ours lookup=.. bulk=.. add=.. delete=..
#                   run N dpdk_lpm6 / dpdk_fib6 / ours6 (the same fields)
# Last lines (one per family):
#   lpm rounds=.. ours_bulk=.. dpdk_lpm_bulk=.. ratio_bulk_lpm=..
#       ours_lookup=.. dpdk_lpm_lookup=.. ratio_lookup_lpm=..
#       ours_add=.. dpdk_fib_add=.. ratio_add_fib=.. dpdk_lpm_add=.. ...
#   lpm6 rounds=.. ours_bulk=.. dpdk_lpm6_bulk=.. ratio_bulk_lpm6=..
#       dpdk_fib6_bulk=.. ratio_bulk_fib6=.. ours_lookup=.. ... (the same set)
# All figures are TSC cycles (per address looked up, per route added or
# deleted), medians over the rounds; ratio = ours / DPDK (< 1: ours takes
# fewer cycles).

if [[ -z "${_LPM_BOUNDED:-}" ]]; then       # bound everything: re-exec under timeout
    export _LPM_BOUNDED=1
    exec timeout --foreground -k 20 "${TOTAL_LIMIT:-3600}" bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C
[[ $# -eq 0 ]] || { echo "usage: [ROUNDS=N] [CPU=C] [QUICK=1] [FAMILY=all|4|6] $0" >&2; exit 2; }
QUICK=${QUICK:-0}
[[ $QUICK != 0 ]] && ROUNDS=${ROUNDS:-1}
ROUNDS=${ROUNDS:-3} CPU=${CPU:-1}
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "ROUNDS must be 1 to 99" >&2; exit 2; }
[[ $CPU =~ ^[0-9]+$ ]] || { echo "CPU must be one CPU number" >&2; exit 2; }
FAMILY=${FAMILY:-all}
case $FAMILY in
    all) V4=1 V6=1 ;;
    4) V4=1 V6=0 ;;
    6) V4=0 V6=1 ;;
    *) echo "FAMILY must be all, 4 or 6" >&2; exit 2 ;;
esac

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
# fib6_perf_autotest asks rte_fib6 for 1,000,000 groups of 256 4-byte entries
# (1 GiB) besides its 64 MiB first level: it fails with 512 pages, runs with 768.
need=512
((V6)) && need=768
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

# field FILE REGEX: the first number after REGEX in FILE (DPDK prints some
# with %g: 2.46846e+06), or "" if none.
field() { sed -n "s/.*$2[^0-9]*\([0-9][0-9.]*\(e[-+][0-9][0-9]*\)\{0,1\}\).*/\1/p" "$1" | head -n 1; }
declare -A vals
keep() { # KEY VALUE: one round's figure; a missing one stops the script
    [[ -n "$2" ]] || die "no figure for $1 (logs in $WORK)"
    vals[$1]+="$2 "
}

# dpdk_run TEST OUTFILE: one autotest in dpdk-test, its output in OUTFILE.
dpdk_run() {
    echo "$1" | timeout "$RUN_LIMIT" dpdk-test "${EAL[@]}" >"$2" 2>&1 ||
        die "dpdk-test $1 failed: $(tail -n 3 "$2")"
}
# run_dpdk_lpm ROUND [6]: lpm_perf_autotest, or lpm6_perf_autotest with 6.
run_dpdk_lpm() {
    local v=${2:-} out=$WORK/dpdk-lpm${2:-}.$1.log
    dpdk_run "lpm${v}_perf_autotest" "$out"
    local l b a d
    l=$(field "$out" "Average LPM Lookup:") b=$(field "$out" "BULK LPM Lookup:")
    a=$(field "$out" "Average LPM Add:") d=$(field "$out" "Average LPM Delete:")
    keep "dpdk_lpm${v}_lookup" "$l"; keep "dpdk_lpm${v}_bulk" "$b"
    keep "dpdk_lpm${v}_add" "$a"; keep "dpdk_lpm${v}_delete" "$d"
    echo "run $1 dpdk_lpm$v lookup=$l bulk=$b add=$a delete=$d"
}
# run_dpdk_fib ROUND [6]: fib_perf_autotest, or fib6_perf_autotest with 6.
run_dpdk_fib() {
    local v=${2:-} out=$WORK/dpdk-fib${2:-}.$1.log
    dpdk_run "fib${v}_perf_autotest" "$out"
    local b a d
    b=$(field "$out" "BULK FIB Lookup:") a=$(field "$out" "Average FIB Add:") d=$(field "$out" "Average FIB Delete:")
    keep "dpdk_fib${v}_bulk" "$b"; keep "dpdk_fib${v}_add" "$a"; keep "dpdk_fib${v}_delete" "$d"
    echo "run $1 dpdk_fib$v bulk=$b add=$a delete=$d"
}
# run_ours ROUND [6]: lpm-bench, or lpm-bench --ipv6 with 6.
run_ours() {
    local v=${2:-} out=$WORK/ours${2:-}.$1.log args=("${ours_args[@]}")
    [[ -n $v ]] && args+=(--ipv6)
    timeout "$RUN_LIMIT" "$LPM_BENCH" "${args[@]}" >"$out" 2>&1 ||
        die "lpm-bench ${args[*]} failed (exit $?): $(tail -n 3 "$out")"
    local l b a d
    l=$(field "$out" "lpm$v case=lookup value=") b=$(field "$out" "lpm$v case=bulk value=")
    a=$(field "$out" "lpm$v case=add value=") d=$(field "$out" "lpm$v case=delete value=")
    keep "ours${v}_lookup" "$l"; keep "ours${v}_bulk" "$b"; keep "ours${v}_add" "$a"; keep "ours${v}_delete" "$d"
    echo "run $1 ours$v lookup=$l bulk=$b add=$a delete=$d"
}
median() { tr ' ' '\n' | grep -E '^[0-9.]+(e[-+][0-9]+)?$' | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'; }

log "rounds=$ROUNDS cpu=$CPU quick=$QUICK family=$FAMILY load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        if ((V4)); then run_dpdk_lpm "$r"; run_dpdk_fib "$r"; run_ours "$r"; fi
        if ((V6)); then run_dpdk_lpm "$r" 6; run_dpdk_fib "$r" 6; run_ours "$r" 6; fi
    else
        if ((V6)); then run_ours "$r" 6; run_dpdk_fib "$r" 6; run_dpdk_lpm "$r" 6; fi
        if ((V4)); then run_ours "$r"; run_dpdk_fib "$r"; run_dpdk_lpm "$r"; fi
    fi
done
declare -A m
for k in "${!vals[@]}"; do m[$k]=$(median <<<"${vals[$k]}"); done
log "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if ((V4)); then
    echo "lpm rounds=$ROUNDS" \
        "ours_bulk=${m[ours_bulk]} dpdk_lpm_bulk=${m[dpdk_lpm_bulk]} ratio_bulk_lpm=$(ratio "${m[ours_bulk]}" "${m[dpdk_lpm_bulk]}")" \
        "dpdk_fib_bulk=${m[dpdk_fib_bulk]} ratio_bulk_fib=$(ratio "${m[ours_bulk]}" "${m[dpdk_fib_bulk]}")" \
        "ours_lookup=${m[ours_lookup]} dpdk_lpm_lookup=${m[dpdk_lpm_lookup]} ratio_lookup_lpm=$(ratio "${m[ours_lookup]}" "${m[dpdk_lpm_lookup]}")" \
        "ours_add=${m[ours_add]} dpdk_fib_add=${m[dpdk_fib_add]} ratio_add_fib=$(ratio "${m[ours_add]}" "${m[dpdk_fib_add]}")" \
        "dpdk_lpm_add=${m[dpdk_lpm_add]} ratio_add_lpm=$(ratio "${m[ours_add]}" "${m[dpdk_lpm_add]}")" \
        "ours_delete=${m[ours_delete]} dpdk_fib_delete=${m[dpdk_fib_delete]} ratio_delete_fib=$(ratio "${m[ours_delete]}" "${m[dpdk_fib_delete]}")"
fi
if ((V6)); then
    echo "lpm6 rounds=$ROUNDS" \
        "ours_bulk=${m[ours6_bulk]} dpdk_lpm6_bulk=${m[dpdk_lpm6_bulk]} ratio_bulk_lpm6=$(ratio "${m[ours6_bulk]}" "${m[dpdk_lpm6_bulk]}")" \
        "dpdk_fib6_bulk=${m[dpdk_fib6_bulk]} ratio_bulk_fib6=$(ratio "${m[ours6_bulk]}" "${m[dpdk_fib6_bulk]}")" \
        "ours_lookup=${m[ours6_lookup]} dpdk_lpm6_lookup=${m[dpdk_lpm6_lookup]} ratio_lookup_lpm6=$(ratio "${m[ours6_lookup]}" "${m[dpdk_lpm6_lookup]}")" \
        "ours_add=${m[ours6_add]} dpdk_lpm6_add=${m[dpdk_lpm6_add]} ratio_add_lpm6=$(ratio "${m[ours6_add]}" "${m[dpdk_lpm6_add]}")" \
        "dpdk_fib6_add=${m[dpdk_fib6_add]} ratio_add_fib6=$(ratio "${m[ours6_add]}" "${m[dpdk_fib6_add]}")" \
        "ours_delete=${m[ours6_delete]} dpdk_lpm6_delete=${m[dpdk_lpm6_delete]} ratio_delete_lpm6=$(ratio "${m[ours6_delete]}" "${m[dpdk_lpm6_delete]}")" \
        "dpdk_fib6_delete=${m[dpdk_fib6_delete]} ratio_delete_fib6=$(ratio "${m[ours6_delete]}" "${m[dpdk_fib6_delete]}")"
fi
