#!/usr/bin/env bash
# compare-afpacket.sh -- fastpath's AF_PACKET port against DPDK's
# net_af_packet (dpdk-testpmd --vdev net_af_packet0,iface=...) on the same
# veth pairs, with the same generator, interleaved rounds.
#
# Three network namespaces made here (and deleted at exit):
#   gen:  g0 ---veth--- f0 :fwd: f1 ---veth--- s1  :sink
# The generator (bench's afp-gen: 64-byte UDP frames of FLOWS flows to a
# MAC nobody has, through our AF_PACKET TX ring, RATE frames a second)
# sends on g0, pinned to GEN_CPU. The forwarder under test runs in fwd,
# its one forwarding core on FWD_CPU, io mode f0 -> f1 (and back); the
# sink's kernel drops the frames (PACKET_OTHERHOST). Both forwarders are
# offered the same load, below what either can forward on this 2-core
# machine (the generator's CPU also runs the kernel's veth and
# packet-socket work of the receive side; unpaced, RATE=0, it reaches
# about 0.4 Mpps on a busy machine and 1 Mpps on a quiet one, which
# overruns both), so both are generator-bound (delivered_share near 1)
# and the comparison is the forwarder's busy cycles per packet: testpmd's
# --record-core-cycles figure ("CPU cycles/packet" at `stop`: busy TSC
# cycles over packets received) and fastpath's summary ("busy
# cycles/pkt": busy TSC cycles over packets forwarded).
#
# Needs root (ip netns, raw sockets, apt-get). Usage:
#   sudo scripts/compare-afpacket.sh [--quick]
# Env knobs: ROUNDS=3 DURATION=10 WARMUP=1 BURST=32 FLOWS=64 SIZE=64
#   RATE=300000 (frames/s offered; 0: as fast as the generator goes)
#   GEN_CPU=0 FWD_CPU=1 QUICK=1 (= ROUNDS=1 DURATION=3)
#   FASTPATH=/path/to/fastpath AFP_GEN=/path/to/afp-gen (default: build
#   both, release) TOTAL_LIMIT=1800 (seconds bound on the whole script)
# Per-run lines: run N dpdk|fastpath gen_mpps=X fwd_mpps=Y sent=S delivered=D
#                delivered_share=D/S cycles_per_pkt=C
# (delivered_share near 1: the run was generator-bound, as the comparison
# assumes; well below 1: the forwarder was the bottleneck, e.g. on a busy
# machine, and its kernel ring dropped the rest)
# Last line:     compare afpacket rate=.. burst=.. flows=.. rounds=.. dpdk_gen_mpps=..
#                fastpath_gen_mpps=.. dpdk_cycles_per_pkt=.. fastpath_cycles_per_pkt=..
#                ratio=.. ratio_min=.. ratio_max=..
# ratio is fastpath's median cycles/packet over DPDK's (below 1: fastpath
# spends fewer); ratio_min/max the spread of the rounds' own ratios.

if [[ -z "${_CMP_BOUNDED:-}" ]]; then      # bound everything: re-exec under timeout
    export _CMP_BOUNDED=1
    exec timeout --foreground -k 20 "${TOTAL_LIMIT:-1800}" bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C

[[ "${1:-}" == --quick ]] && QUICK=1
[[ $# -gt 0 && "$1" != --quick ]] && { echo "usage: $0 [--quick]" >&2; exit 2; }
if [[ -n "${QUICK:-}" && "${QUICK}" != 0 ]]; then ROUNDS=1 DURATION=3; fi
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} WARMUP=${WARMUP:-1}
BURST=${BURST:-32} FLOWS=${FLOWS:-64} SIZE=${SIZE:-64} RATE=${RATE:-300000}
GEN_CPU=${GEN_CPU:-0} FWD_CPU=${FWD_CPU:-1}
for v in ROUNDS DURATION BURST FLOWS SIZE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
[[ "$RATE" =~ ^[0-9]+$ ]] || { echo "RATE must be a whole number of frames a second" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKGS=(dpdk-dev librte-net-af-packet23 librte-mempool-ring23 iproute2)
RUN_LIMIT=$((WARMUP + DURATION + 60))       # per-process timeout (s)
PFX=fpafp$$                                  # our own DPDK --file-prefix
NS_GEN=fpafp-gen-$$ NS_FWD=fpafp-fwd-$$ NS_SINK=fpafp-sink-$$
WORK=$(mktemp -d /tmp/compare-afpacket.XXXXXX)
TP_PID="" TP_FD="" FP_PID=""
# shellcheck source=scripts/lib/side-by-side.sh
. "$ROOT/scripts/lib/side-by-side.sh"         # log, die, apt_install_missing, wait_log, nap, tp, median

cleanup() {
    local rc=$?
    set +e
    [[ -n "$TP_FD" ]] && exec {TP_FD}>&-
    for p in $TP_PID $FP_PID; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    for ns in "$NS_GEN" "$NS_FWD" "$NS_SINK"; do ip netns del "$ns" 2>/dev/null; done
    remove_work_and_rundir
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || die "must run as root"

# ------------------------------------------------------------ setup ----
apt_install_missing "$WORK/apt.log" "${PKGS[@]}" || die "apt-get install failed"
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found (package dpdk-dev)"

export PATH="$PATH:${HOME:-/root}/.cargo/bin"
if [[ -z "${FASTPATH:-}" || -z "${AFP_GEN:-}" ]]; then
    log "cargo build --release -p fastpath -p bench --bin fastpath --bin afp-gen"
    (cd "$ROOT" && timeout 1800 cargo build --release -p fastpath -p bench --bin fastpath --bin afp-gen) >&2 ||
        die "cargo build failed"
    tdir=${CARGO_TARGET_DIR:-$ROOT/target}/release
    FASTPATH=${FASTPATH:-$tdir/fastpath} AFP_GEN=${AFP_GEN:-$tdir/afp-gen}
fi
[[ -x "$FASTPATH" ]] || die "fastpath not found at $FASTPATH"
[[ -x "$AFP_GEN" ]] || die "afp-gen not found at $AFP_GEN"

# The namespaces, IPv6 off everywhere before the links exist (no router
# solicitations or MLD reports among the frames), then the two pairs.
for ns in "$NS_GEN" "$NS_FWD" "$NS_SINK"; do
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$NS_GEN" link add g0 type veth peer name f0 netns "$NS_FWD"
ip -n "$NS_FWD" link add f1 type veth peer name s1 netns "$NS_SINK"
ip -n "$NS_GEN" link set g0 up
ip -n "$NS_FWD" link set f0 up
ip -n "$NS_FWD" link set f1 up
ip -n "$NS_SINK" link set s1 up
sleep 1

# sink_rx: packets s1 has received so far.
sink_rx() {
    ip -n "$NS_SINK" -s link show s1 | awk '/RX:/ {getline; print $2; exit}'
}

# generate: runs the generator for DURATION s; sets SENT and GEN_MPPS.
generate() {
    local line
    line=$(ip netns exec "$NS_GEN" taskset -c "$GEN_CPU" timeout -k 5 "$RUN_LIMIT" "$AFP_GEN" \
        --iface g0 --duration "$DURATION" --size "$SIZE" --flows "$FLOWS" --burst "$BURST" \
        --pps "$RATE" | tail -n 1)
    [[ "$line" =~ sent=([0-9]+)\ .*mpps=([0-9.]+)$ ]] || die "afp-gen gave no figure: '$line'"
    SENT=${BASH_REMATCH[1]} GEN_MPPS=${BASH_REMATCH[2]}
}

# measure: the generator's run, with what the sink got meanwhile; sets
# SENT, GEN_MPPS, DELIVERED and FWD_MPPS (delivered over the window).
measure() {
    local before secs
    before=$(sink_rx)
    secs=$(date +%s.%N)
    generate
    nap 0.2
    DELIVERED=$(($(sink_rx) - before))
    secs=$(awk -v a="$secs" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
    FWD_MPPS=$(awk -v d="$DELIVERED" -v s="$secs" 'BEGIN {printf "%.3f", d / s / 1e6}')
}

# ------------------------------------------------------- runners ----

# run_dpdk: sets GEN_MPPS, FWD_MPPS, DELIVERED, CPP
run_dpdk() {
    local logf=$WORK/testpmd.log n rx
    rm -f "$WORK/tp.in"; mkfifo "$WORK/tp.in"
    ip netns exec "$NS_FWD" timeout -k 5 "$RUN_LIMIT" stdbuf -oL -eL dpdk-testpmd \
        -l "$GEN_CPU,$FWD_CPU" --main-lcore "$GEN_CPU" -n 1 --no-pci --no-huge -m 512 \
        --no-telemetry --file-prefix="$PFX" \
        --vdev net_af_packet0,iface=f0 --vdev net_af_packet1,iface=f1 -- -i \
        --forward-mode=io --burst="$BURST" --record-core-cycles --total-num-mbufs=16384 \
        <"$WORK/tp.in" >"$logf" 2>&1 &
    TP_PID=$!
    exec {TP_FD}>"$WORK/tp.in"
    wait_log "$logf" 0 'testpmd> '
    tp start
    nap "$WARMUP"
    measure
    n=$(wc -l <"$logf"); tp stop
    wait_log "$logf" "$n" 'Done\.'
    CPP=$(tail -n +"$((n + 1))" "$logf" | grep -o 'CPU cycles/packet=[0-9.]*' | tail -1 | cut -d= -f2 || true)
    rx=$(tail -n +"$((n + 1))" "$logf" | awk '/Accumulated forward statistics/ {a = 1}
        a && /RX-packets:/ {print $2; exit}')
    tp quit
    exec {TP_FD}>&-; TP_FD=""
    wait "$TP_PID" 2>/dev/null || true; TP_PID=""
    [[ -n "$CPP" ]] || { tail -30 "$logf" >&2; die "testpmd printed no 'CPU cycles/packet='"; }
    log "testpmd: rx ${rx:-?} packets over the run"
}

# run_ours: sets GEN_MPPS, FWD_MPPS, DELIVERED, CPP
run_ours() {
    local out=$WORK/fastpath.out err=$WORK/fastpath.err i rc=0 total
    # --foreground: timeout passes our SIGINT to fastpath once (without
    # it, timeout signals its child and then its whole process group,
    # and fastpath takes a second SIGINT as "exit at once").
    ip netns exec "$NS_FWD" timeout --foreground -k 5 "$RUN_LIMIT" "$FASTPATH" run --no-huge \
        --ports afpacket:f0,afpacket:f1 --cpus "$FWD_CPU" --burst "$BURST" \
        --stats-period 0 --duration $((WARMUP + DURATION + 30)) >"$out" 2>"$err" &
    FP_PID=$!
    for ((i = 0; i < 200; i++)); do
        grep -q '^fastpath: port 1 ' "$out" && break
        kill -0 "$FP_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^fastpath: port 1 ' "$out" || { tail -n 20 "$out" "$err" >&2; die "fastpath did not start"; }
    nap "$WARMUP"
    measure
    kill -INT "$FP_PID"
    wait "$FP_PID" || rc=$?
    FP_PID=""
    ((rc == 0)) || { tail -n 20 "$out" "$err" >&2; die "fastpath failed (rc=$rc)"; }
    total=$(grep '^total: forwarded' "$out" || true)
    [[ "$total" =~ ,\ ([0-9.]+)\ busy\ cycles/pkt ]] || { cat "$out" >&2; die "fastpath gave no busy cycles/pkt"; }
    CPP=${BASH_REMATCH[1]}
    log "fastpath: $total"
    grep -E '^port [01] counters' "$out" >&2 || true
}

# ------------------------------------------------------- rounds ----
log "rate=$RATE burst=$BURST flows=$FLOWS size=$SIZE rounds=$ROUNDS duration=${DURATION}s gen_cpu=$GEN_CPU fwd_cpu=$FWD_CPU"
d_gen=() d_cpp=() f_gen=() f_cpp=()
for ((r = 1; r <= ROUNDS; r++)); do
    order=(dpdk fastpath); ((r % 2)) || order=(fastpath dpdk)
    for who in "${order[@]}"; do
        SENT="" GEN_MPPS="" FWD_MPPS="" DELIVERED="" CPP=""
        if [[ $who == dpdk ]]; then
            run_dpdk; d_gen+=("$GEN_MPPS"); d_cpp+=("$CPP")
        else
            run_ours; f_gen+=("$GEN_MPPS"); f_cpp+=("$CPP")
        fi
        # A generator-bound run delivers (nearly) all that was sent; a
        # forwarder-bound one leaves the rest in the kernel's ring drops.
        echo "run $r $who gen_mpps=$GEN_MPPS fwd_mpps=$FWD_MPPS sent=$SENT delivered=$DELIVERED" \
             "delivered_share=$(awk -v d="$DELIVERED" -v s="$SENT" 'BEGIN {printf "%.3f", (s > 0) ? d / s : 0}')" \
             "cycles_per_pkt=$CPP"
    done
done
dc=$(median %.1f "${d_cpp[@]}") fc=$(median %.1f "${f_cpp[@]}")
round_ratios=$(for ((i = 0; i < ROUNDS; i++)); do
    awk -v a="${f_cpp[i]}" -v b="${d_cpp[i]}" 'BEGIN {printf "%.2f\n", (b > 0) ? a / b : 0}'
done | sort -g)
echo "compare afpacket rate=$RATE burst=$BURST flows=$FLOWS rounds=$ROUNDS" \
     "dpdk_gen_mpps=$(median %.3f "${d_gen[@]}") fastpath_gen_mpps=$(median %.3f "${f_gen[@]}")" \
     "dpdk_cycles_per_pkt=$dc fastpath_cycles_per_pkt=$fc" \
     "ratio=$(awk -v a="$fc" -v b="$dc" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')" \
     "ratio_min=$(head -n 1 <<<"$round_ratios") ratio_max=$(tail -n 1 <<<"$round_ratios")"
