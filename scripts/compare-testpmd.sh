#!/usr/bin/env bash
# compare-testpmd.sh -- A/B of fastpath's fwd-bench against DPDK dpdk-testpmd
# on two in-memory ports (null, or ring ports forming a loop), one forwarding
# core, interleaved rounds.
#
# Needs root (apt-get, hugepages, hugetlbfs mount). Usage:
#   sudo scripts/compare-testpmd.sh [--quick]
# Env knobs: ROUNDS=3 DURATION=10 WARMUP=2 BURST=32 FWD_MODE=io|mac
#   PORTS=null|ring (ring: testpmd on --vdev net_ring0 --vdev net_ring1 with
#   `start tx_first $TX_FIRST`, fwd-bench --ports ring --tx-first $TX_FIRST;
#   both seed TX_FIRST bursts of BURST per port, so 2*TX_FIRST*BURST packets
#   circulate; TX_FIRST=1 default: testpmd's `start tx_first` without a count,
#   64 packets at burst 32; TX_FIRST=16 puts 1024 in flight)
#   HUGEPAGES=512 (only ever raised)  QUICK=1 (= ROUNDS=1 DURATION=3 WARMUP=1)
#   FWD_BENCH=/path/to/fwd-bench (default: build and use target/release/fwd-bench)
#   TOTAL_LIMIT=3600 (seconds bound on the whole script)
# Per-run lines:  run N dpdk|fastpath mpps=X cycles_per_pkt=Y
# Last line:      compare mode=.. ports=.. [tx_first=..] burst=.. rounds=.. dpdk_mpps=..
#                 fastpath_mpps=.. dpdk_cycles_per_pkt=.. fastpath_cycles_per_pkt=..
#                 ratio=.. ratio_min=.. ratio_max=..
# ratio is the ratio of the medians; ratio_min/max the spread of the rounds'
# own ratios (each round's fastpath Mpps over the same round's DPDK Mpps).
# DPDK Mpps is the sum of both ports' Tx-pps over the measured interval (its
# ports' opackets: what the PMD accepted); fastpath's is what its TX queues
# accepted over its measured window: the same count on both sides.
# cycles/pkt is testpmd's --record-core-cycles figure (busy TSC cycles/packet).

if [[ -z "${_CMP_BOUNDED:-}" ]]; then      # bound everything: re-exec under timeout
    export _CMP_BOUNDED=1
    exec timeout --foreground -k 20 "${TOTAL_LIMIT:-3600}" bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C

[[ "${1:-}" == --quick ]] && QUICK=1
[[ $# -gt 0 && "$1" != --quick ]] && { echo "usage: $0 [--quick]" >&2; exit 2; }
if [[ -n "${QUICK:-}" && "${QUICK}" != 0 ]]; then ROUNDS=1 DURATION=3 WARMUP=1; fi
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
BURST=${BURST:-32} FWD_MODE=${FWD_MODE:-io} HUGEPAGES=${HUGEPAGES:-512}
PORTS=${PORTS:-null} TX_FIRST=${TX_FIRST:-1}
case $FWD_MODE in io|mac) ;; *) echo "FWD_MODE must be io or mac" >&2; exit 2;; esac
case $PORTS in null|ring) ;; *) echo "PORTS must be null or ring" >&2; exit 2;; esac
[[ "$TX_FIRST" =~ ^[1-9][0-9]*$ ]] || { echo "TX_FIRST must be a positive integer" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKGS=(dpdk-dev librte-net-null23 librte-net-ring23 librte-mempool-ring23)
RUN_LIMIT=$((WARMUP + DURATION + 60))       # per-process timeout (s)
PFX=fpcmp$$                                  # our own DPDK --file-prefix
WORK=$(mktemp -d /tmp/compare-testpmd.XXXXXX)
TP_PID="" TP_FD="" FB_PID=""
# shellcheck source=scripts/lib/side-by-side.sh
. "$ROOT/scripts/lib/side-by-side.sh"         # log, die, apt_install_missing, wait_log, nap, tp, median

cleanup() {
    local rc=$?
    set +e
    [[ -n "$TP_FD" ]] && exec {TP_FD}>&-
    for p in $TP_PID $FB_PID; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    remove_work_and_rundir
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || die "must run as root"

# ------------------------------------------------------------ setup ----
apt_install_missing "$WORK/apt.log" "${PKGS[@]}" || die "apt-get install failed"
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found (package dpdk-dev)"

cur=$(cat /proc/sys/vm/nr_hugepages)
if ((cur < HUGEPAGES)); then
    echo "$HUGEPAGES" >/proc/sys/vm/nr_hugepages
    log "nr_hugepages $cur -> $(cat /proc/sys/vm/nr_hugepages)"
fi
if ! awk '$3 == "hugetlbfs" {f = 1} END {exit !f}' /proc/mounts; then
    mkdir -p /dev/hugepages && mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
    log "mounted hugetlbfs on /dev/hugepages"
fi
free=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
((free >= 256)) || die "only $free free 2 MB hugepages; testpmd needs about 256"

if [[ -n "${FWD_BENCH:-}" ]]; then
    log "using FWD_BENCH=$FWD_BENCH (no build)"
else
    export PATH="$PATH:${HOME:-/root}/.cargo/bin"
    log "cargo build --release -p bench"
    (cd "$ROOT" && timeout 1800 cargo build --release -p bench) >&2 || die "cargo build failed"
    FWD_BENCH=$ROOT/target/release/fwd-bench
fi
[[ -x "$FWD_BENCH" ]] || die "fwd-bench not found at $FWD_BENCH"

# ------------------------------------------------------- runners ----

# run_dpdk: sets MPPS and CPP (no subshell, so cleanup knows TP_PID)
run_dpdk() {
    local logf=$WORK/testpmd.log n
    rm -f "$WORK/tp.in"; mkfifo "$WORK/tp.in"
    timeout -k 5 "$RUN_LIMIT" stdbuf -oL -eL dpdk-testpmd -l 0,1 -n 1 --no-pci --in-memory \
        --no-telemetry --file-prefix="$PFX" --vdev "net_${PORTS}0" --vdev "net_${PORTS}1" -- -i \
        --forward-mode="$FWD_MODE" --burst="$BURST" --record-core-cycles \
        <"$WORK/tp.in" >"$logf" 2>&1 &
    TP_PID=$!
    exec {TP_FD}>"$WORK/tp.in"
    wait_log "$logf" 0 'testpmd> '
    if [[ $PORTS == ring ]]; then tp "start tx_first $TX_FIRST"; else tp start; fi
    nap "$WARMUP"
    n=$(wc -l <"$logf"); tp "show port stats all"      # baseline: Tx-pps is since last show
    wait_log "$logf" "$n" 'Tx-pps:' 2
    nap "$DURATION"
    n=$(wc -l <"$logf"); tp "show port stats all"
    wait_log "$logf" "$n" 'Tx-pps:' 2
    MPPS=$(tail -n +"$((n + 1))" "$logf" | awk '/Tx-pps:/ {s += $2; k++} k == 2 {exit}
        END {if (k == 2) printf "%.3f", s / 1e6}')
    n=$(wc -l <"$logf"); tp stop
    wait_log "$logf" "$n" 'Done\.'
    CPP=$(tail -n +"$((n + 1))" "$logf" | grep -o 'CPU cycles/packet=[0-9.]*' | tail -1 | cut -d= -f2 || true)
    tp quit
    exec {TP_FD}>&-; TP_FD=""
    wait "$TP_PID" 2>/dev/null || true; TP_PID=""
    [[ -n "$MPPS" ]] || { tail -30 "$logf" >&2; die "testpmd gave no Tx-pps figure"; }
    [[ -n "$CPP" ]] || { tail -30 "$logf" >&2; die "testpmd printed no 'CPU cycles/packet='"; }
}

# run_ours: sets MPPS and CPP from fwd-bench's last stdout line
run_ours() {
    local out=$WORK/fwd-bench.out last rc=0
    local seed=()
    [[ $PORTS == ring ]] && seed=(--tx-first "$TX_FIRST")
    timeout -k 5 "$RUN_LIMIT" "$FWD_BENCH" --mode "$FWD_MODE" --ports "$PORTS" --cores 1 --cpus 1 \
        --burst "$BURST" --duration "$DURATION" --warmup "$WARMUP" "${seed[@]}" \
        >"$out" 2>"$WORK/fwd-bench.err" &
    FB_PID=$!
    wait "$FB_PID" || rc=$?
    FB_PID=""
    ((rc == 0)) || { tail -n 20 "$WORK/fwd-bench.err" "$out" >&2; die "fwd-bench failed (rc=$rc)"; }
    last=$(tail -n 1 "$out")
    [[ "$last" =~ ^fwd\ .*\ mpps=([0-9.]+)\ cycles_per_pkt=([0-9.]+)$ ]] ||
        { tail -20 "$WORK/fwd-bench.err" >&2; die "fwd-bench gave no figure; last line: '$last'"; }
    MPPS=${BASH_REMATCH[1]} CPP=${BASH_REMATCH[2]}
}

# ------------------------------------------------------- rounds ----
log "mode=$FWD_MODE ports=$PORTS burst=$BURST rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s"
d_mpps=() d_cpp=() f_mpps=() f_cpp=()
for ((r = 1; r <= ROUNDS; r++)); do
    order=(dpdk fastpath); ((r % 2)) || order=(fastpath dpdk)
    for who in "${order[@]}"; do
        MPPS="" CPP=""
        if [[ $who == dpdk ]]; then
            run_dpdk; d_mpps+=("$MPPS"); d_cpp+=("$CPP")
        else
            run_ours; f_mpps+=("$MPPS"); f_cpp+=("$CPP")
        fi
        [[ -n "$MPPS" && -n "$CPP" ]] || die "$who run $r produced no figure"
        echo "run $r $who mpps=$MPPS cycles_per_pkt=$CPP"
    done
done
dm=$(median %.3f "${d_mpps[@]}") fm=$(median %.3f "${f_mpps[@]}")
round_ratios=$(for ((i = 0; i < ROUNDS; i++)); do
    awk -v a="${f_mpps[i]}" -v b="${d_mpps[i]}" 'BEGIN {printf "%.2f\n", (b > 0) ? a / b : 0}'
done | sort -g)
seeded=""; [[ $PORTS == ring ]] && seeded=" tx_first=$TX_FIRST"
echo "compare mode=$FWD_MODE ports=$PORTS$seeded burst=$BURST rounds=$ROUNDS dpdk_mpps=$dm fastpath_mpps=$fm" \
     "dpdk_cycles_per_pkt=$(median %.2f "${d_cpp[@]}") fastpath_cycles_per_pkt=$(median %.2f "${f_cpp[@]}")" \
     "ratio=$(awk -v a="$fm" -v b="$dm" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')" \
     "ratio_min=$(head -n 1 <<<"$round_ratios") ratio_max=$(tail -n 1 <<<"$round_ratios")"
