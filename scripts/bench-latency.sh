#!/usr/bin/env bash
# bench-latency.sh -- the forwarder's latency at several offered loads
# (bench/src/bin/lat-bench.rs), ROUNDS runs, each figure the median over the
# rounds with its spread. Every run measures its own maximum first, then
# offers LOADS percent of it in bursts of BURST, and SINGLE_LOADS percent in
# bursts of 1; a run that loses a packet, miscounts or fails its buffer audit
# fails the script.
#
# No root needed (4 KiB pages by default); two allowed CPUs. Usage:
#   scripts/bench-latency.sh              # 3 rounds, about a minute
#   QUICK=1 scripts/bench-latency.sh      # smoke run: 1 round, short loads
# Env knobs:
#   ROUNDS=3          lat-bench runs
#   DURATION=3        measured seconds per load (WARMUP=0.5 before each)
#   MAX_DURATION=1    seconds of the unpaced run that measures the maximum
#   LOADS=10,50,90    percent of the maximum, in bursts of BURST (32)
#   SINGLE_LOADS=10   percent of the maximum, in bursts of 1 (none: skip)
#   CPUS=0,1          source/sink CPU, forwarder CPU
#   MEMORY=nohuge     nohuge (4 KiB pages) or huge (2 MB hugepages: reserved
#                     beforehand, or by this script as root)
#   KEEP_LOGS=DIR     keep every run's output in DIR
#   LAT_BENCH=        the binary (default: cargo build --release -p bench)
#   TOTAL_LIMIT=900   seconds bound on the whole script
# Machine-readable lines, after the table:
#   latency load=10% burst=32 rounds=3 offered_mpps=X achieved_mpps=X p50_ns=X
#     p99_ns=X p999_ns=X p9999_ns=X max_ns=X (medians) p50_ns_min=.. p50_ns_max=..
#     ... sent=N received=N dropped=N lost=N (sums over the rounds)
#   latency summary cases=4 rounds=3 max_mpps=X max_mpps_min=X max_mpps_max=X
#     sent=N received=N dropped=N lost=N status=ok

if [[ -z "${_LAT_BOUNDED:-}" ]]; then      # bound everything: re-exec under timeout
    export _LAT_BOUNDED=1
    exec timeout --foreground -k 20 "${TOTAL_LIMIT:-900}" bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C

[[ $# -eq 0 ]] || { echo "usage: [QUICK=1] [ROUNDS=N] $0 (settings are environment variables)" >&2; exit 2; }
QUICK=${QUICK:-0}
if [[ $QUICK != 0 ]]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-0.3} WARMUP=${WARMUP:-0.1} MAX_DURATION=${MAX_DURATION:-0.3}
fi
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-3} WARMUP=${WARMUP:-0.5} MAX_DURATION=${MAX_DURATION:-1}
LOADS=${LOADS:-10,50,90} SINGLE_LOADS=${SINGLE_LOADS:-10} BURST=${BURST:-32}
CPUS=${CPUS:-0,1} MEMORY=${MEMORY:-nohuge}
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "ROUNDS must be 1 to 99" >&2; exit 2; }
for v in DURATION WARMUP MAX_DURATION; do
    [[ ${!v} =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "$v must be a number of seconds" >&2; exit 2; }
done
[[ $CPUS =~ ^[0-9]+,[0-9]+$ ]] || { echo "CPUS must be two CPU numbers, GEN,FWD" >&2; exit 2; }
case $MEMORY in nohuge|huge) ;; *) echo "MEMORY must be nohuge or huge" >&2; exit 2;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/bench-latency.XXXXXX)
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
cleanup() {
    local rc=$?
    set +e
    if [[ -n "${KEEP_LOGS:-}" ]]; then
        mkdir -p "$KEEP_LOGS" && cp -r "$WORK"/. "$KEEP_LOGS"/ && log "logs kept in $KEEP_LOGS"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MEM=(--no-huge)
if [[ $MEMORY == huge ]]; then
    MEM=()
    need=16                                     # 2 MB pages: an 18 MiB pool
    free=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
    if ((free < need)); then
        [[ $(id -u) -eq 0 ]] || die "MEMORY=huge: $free free 2 MB hugepages, $need needed (reserve them as root, or MEMORY=nohuge)"
        cur=$(cat /proc/sys/vm/nr_hugepages)
        echo $((cur + need - free)) >/proc/sys/vm/nr_hugepages
        log "nr_hugepages $cur -> $(cat /proc/sys/vm/nr_hugepages)"
    fi
fi

if [[ -z "${LAT_BENCH:-}" ]]; then
    export PATH="$PATH:${HOME:-/root}/.cargo/bin"
    log "cargo build --release -p bench"
    (cd "$ROOT" && timeout 1800 cargo build --release -p bench) >&2 || die "cargo build failed"
    LAT_BENCH=$ROOT/target/release/lat-bench
fi
[[ -x $LAT_BENCH ]] || die "lat-bench not found at $LAT_BENCH"

# Each run: its own maximum, the loads, the drain; bounded per process.
n_loads=$(tr ',' '\n' <<<"$LOADS,$SINGLE_LOADS" | grep -c '^[0-9]')
RUN_LIMIT=$(awk -v m="$MAX_DURATION" -v d="$DURATION" -v w="$WARMUP" -v n="$n_loads" \
    'BEGIN {printf "%d", 60 + m + n * (d + w + 2)}')

log "rounds=$ROUNDS loads=$LOADS (burst $BURST) single=$SINGLE_LOADS duration=${DURATION}s warmup=${WARMUP}s cpus=$CPUS memory=$MEMORY load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    out=$WORK/run$r.out rc=0
    timeout -k 5 "$RUN_LIMIT" "$LAT_BENCH" "${MEM[@]}" --gen-cpu "${CPUS%,*}" --fwd-cpu "${CPUS#*,}" \
        --loads "$LOADS" --single-loads "$SINGLE_LOADS" --burst "$BURST" --duration "$DURATION" \
        --warmup "$WARMUP" --max-duration "$MAX_DURATION" >"$out" 2>"$WORK/run$r.err" || rc=$?
    if ((rc != 0)) || ! grep -q '^lat summary .* status=ok$' "$out"; then
        cat "$WORK/run$r.err" "$out" >&2
        die "lat-bench run $r failed (status $rc)"
    fi
    grep '^lat ' "$out" | sed "s/^/run $r: /" | cut -c1-200 >&2
done

# Every "lat load=" line of every run as "case key value" facts.
for ((r = 1; r <= ROUNDS; r++)); do
    awk '/^lat load=/ && !/^lat load=max / {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            c = v["load"] "/" v["burst"]
            for (k in v) print c, k, v[k]
            delete v
        }
        /^lat summary / {
            for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "max_mpps") print "summary", kv[1], kv[2] }
        }' "$WORK/run$r.out"
done >"$WORK/facts"

# stat CASE KEY: "median min max" of the rounds' values, or "- - -"
# (Mpps to 3 decimals, nanoseconds to 1).
stat() {
    local f=%.1f
    [[ $2 == *mpps ]] && f=%.3f
    awk -v c="$1" -v k="$2" '$1 == c && $2 == k && $3 != "-" {print $3}' "$WORK/facts" | sort -g |
        awk -v f="$f" '{v[NR] = $1} END {
            if (NR == 0) { print "- - -"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf f " " f " " f "\n", m, v[1], v[NR]
        }'
}
sum() { awk -v c="$1" -v k="$2" '$1 == c && $2 == k {s += $3} END {printf "%d", s}' "$WORK/facts"; }

cases=$(awk '$1 != "summary" {print $1}' "$WORK/facts" | awk '!seen[$0]++')
printf '\n%-12s %10s %10s | %-24s %-24s %-24s %-24s %-24s | %s\n' case offered achieved \
    'p50 ns' 'p99 ns' 'p99.9 ns' 'p99.99 ns' 'max ns' 'sent/received/dropped/lost'
tot_s=0 tot_r=0 tot_d=0 tot_l=0 ncases=0 lines=() rng=()
for c in $cases; do
    read -r om _ _ < <(stat "$c" offered_mpps)
    read -r am _ _ < <(stat "$c" achieved_mpps)
    row=() kv=()
    for k in p50_ns p99_ns p999_ns p9999_ns max_ns; do
        read -r m lo hi < <(stat "$c" "$k")
        row+=("$m ($lo-$hi)")
        kv+=("$k=$m")
        rng+=("${k}_min=$lo ${k}_max=$hi")
    done
    s=$(sum "$c" sent) rc_=$(sum "$c" received) d=$(sum "$c" dropped) l=$(sum "$c" lost)
    printf '%-12s %10s %10s | %-24s %-24s %-24s %-24s %-24s | %s/%s/%s/%s\n' "$c" "$om" "$am" \
        "${row[@]}" "$s" "$rc_" "$d" "$l"
    lines+=("latency load=${c%/*} burst=${c#*/} rounds=$ROUNDS offered_mpps=$om achieved_mpps=$am ${kv[*]} ${rng[*]} sent=$s received=$rc_ dropped=$d lost=$l")
    rng=()
    tot_s=$((tot_s + s)) tot_r=$((tot_r + rc_)) tot_d=$((tot_d + d)) tot_l=$((tot_l + l)) ncases=$((ncases + 1))
done
echo
printf '%s\n' "${lines[@]}"
read -r mm mlo mhi < <(stat summary max_mpps)
status=ok
((tot_l == 0 && ncases > 0)) || status=FAILED
echo "latency summary cases=$ncases rounds=$ROUNDS max_mpps=$mm max_mpps_min=$mlo max_mpps_max=$mhi" \
     "sent=$tot_s received=$tot_r dropped=$tot_d lost=$tot_l status=$status"
[[ $status == ok ]]
