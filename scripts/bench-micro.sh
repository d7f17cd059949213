#!/usr/bin/env bash
# bench-micro.sh -- our ring and pool micro-benchmarks side by side with DPDK's,
# on this machine, in one run: DPDK 22.11's own ring_perf_autotest (dpdk-test)
# against bench/src/bin/ring-bench.rs, and bench/dpdk/dpdk-pool-bench.c (DPDK's
# mempool and mbuf pool, built here against the system's libdpdk) against
# bench/src/bin/pool-bench.rs. DPDK and ours alternate within each round (the
# order flips every round); each figure is the median over the rounds.
#
# Needs root on Debian bookworm (installs dpdk-dev, libdpdk-dev, gcc,
# pkg-config with apt-get) and two allowed CPUs. Usage:
#   sudo scripts/bench-micro.sh            # full run, about 3 minutes
#   sudo QUICK=1 scripts/bench-micro.sh    # smoke run: 1 round, short cases
# Env knobs:
#   ROUNDS=5          rounds (each: DPDK ring, ours ring, DPDK pool, ours pool)
#   POOL_SECONDS=0.5  seconds per pool case (each side runs 16 or 32 cases)
#   CPUS=0,1          the two CPUs: single-core cases on the first (DPDK's main
#                     lcore), two-core cases on both (producer on the first)
#   MEMORY=nohuge     nohuge (4 KiB pages on both sides) or huge (2 MB
#                     hugepages on both sides; reserves them if needed)
#   REQUIRE_PAIRED=1  exit 1 if any case lacks a figure on one side
#   KEEP_LOGS=DIR     keep every run's raw output in DIR
#   RING_BENCH=, POOL_BENCH=  our binaries (default: cargo build --release -p bench)
#   TOTAL_LIMIT=1200  seconds bound on the whole script
#
# Figures are TSC cycles (each program reads the TSC itself; DPDK's tsc_hz and
# ours are printed). Ratio = ours / DPDK: below 1 means ours takes fewer cycles.
# Machine-readable lines, one per case, after the tables:
#   micro ring 8B/bulk/spsc/32 unit=cyc/elem dpdk=X ours=Y ratio=Z
#   micro pool cache512/1core/bulk32 unit=cyc/obj dpdk_raw=X ours_raw=W dpdk_mbuf=Y ours=Z ratio_raw=.. ratio_mbuf=..
#     (ratio_raw = ours_raw / dpdk_raw: get_bulk/put_bulk against rte_mempool_get/put_bulk;
#      ratio_mbuf = ours / dpdk_mbuf: alloc_bulk/free_bulk against rte_pktmbuf_alloc/free_bulk)

if [[ -z "${_MICRO_BOUNDED:-}" ]]; then    # bound everything: re-exec under timeout
    export _MICRO_BOUNDED=1
    exec timeout --foreground -k 20 "${TOTAL_LIMIT:-1200}" bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C

[[ $# -eq 0 ]] || { echo "usage: [QUICK=1] [ROUNDS=N] $0 (settings are environment variables)" >&2; exit 2; }
QUICK=${QUICK:-0}
if [[ $QUICK != 0 ]]; then
    ROUNDS=${ROUNDS:-1} POOL_SECONDS=${POOL_SECONDS:-0.05}
fi
ROUNDS=${ROUNDS:-5} POOL_SECONDS=${POOL_SECONDS:-0.5} CPUS=${CPUS:-0,1} MEMORY=${MEMORY:-nohuge}
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "ROUNDS must be 1 to 99" >&2; exit 2; }
[[ $POOL_SECONDS =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "POOL_SECONDS must be a number" >&2; exit 2; }
[[ $CPUS =~ ^[0-9]+,[0-9]+$ ]] || { echo "CPUS must be two CPU numbers, A,B" >&2; exit 2; }
case $MEMORY in nohuge|huge) ;; *) echo "MEMORY must be nohuge or huge" >&2; exit 2;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKGS=(dpdk-dev libdpdk-dev librte-mempool-ring23 gcc pkg-config)
PFX=fpmicro$$                               # our own DPDK --file-prefix
WORK=$(mktemp -d /tmp/bench-micro.XXXXXX)
RUN_LIMIT=300                               # per-process timeout (s)
# shellcheck source=scripts/lib/side-by-side.sh
. "$ROOT/scripts/lib/side-by-side.sh"         # log, die, apt_install_missing

cleanup() {
    local rc=$?
    set +e
    if [[ -n "${KEEP_LOGS:-}" ]]; then
        mkdir -p "$KEEP_LOGS" && cp -r "$WORK"/. "$KEEP_LOGS"/ && log "logs kept in $KEEP_LOGS"
    fi
    remove_work_and_rundir
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, DPDK's EAL)"

# ------------------------------------------------------------ setup ----
apt_install_missing "$WORK/apt.log" "${PKGS[@]}" || die "apt-get install failed"
# Debian ships DPDK's autotest binary in dpdk-dev (dpkg -S /usr/bin/dpdk-test).
command -v dpdk-test >/dev/null || die "dpdk-test not found (package dpdk-dev)"
pkg-config --exists libdpdk || die "pkg-config finds no libdpdk (package libdpdk-dev)"

# Both CPUs must be ours to use (the cgroup cpuset and affinity are checked
# again by our binaries, which name the allowed set if not).
for c in ${CPUS/,/ }; do
    [[ -d /sys/devices/system/cpu/cpu$c ]] || die "CPU $c does not exist (CPUS=$CPUS)"
done

EAL=(-l "$CPUS" --no-pci --no-telemetry --file-prefix="$PFX" --log-level=lib.eal:warning)
OURS_MEM=()
if [[ $MEMORY == nohuge ]]; then
    EAL+=(--no-huge -m 512)
    OURS_MEM=(--no-huge)
else
    EAL+=(--in-memory)
    need=300                                  # 2 MB pages: DPDK's heap and both pools
    cur=$(cat /proc/sys/vm/nr_hugepages)
    ((cur >= need)) || { echo "$need" >/proc/sys/vm/nr_hugepages; log "nr_hugepages $cur -> $(cat /proc/sys/vm/nr_hugepages)"; }
fi

DPDK_POOL=$WORK/dpdk-pool-bench
log "building bench/dpdk/dpdk-pool-bench.c against libdpdk $(pkg-config --modversion libdpdk)"
# The source before the libraries: libdpdk's --libs start with -Wl,--as-needed.
# libdpdk's --cflags carry -march=corei7, as Debian's DPDK libraries are built.
# shellcheck disable=SC2046   # pkg-config's output is a list of flags
cc -O3 -Wall -Wextra -Werror "$ROOT/bench/dpdk/dpdk-pool-bench.c" -o "$DPDK_POOL" \
    $(pkg-config --cflags --libs libdpdk) || die "building dpdk-pool-bench failed"

if [[ -z "${RING_BENCH:-}" || -z "${POOL_BENCH:-}" ]]; then
    export PATH="$PATH:${HOME:-/root}/.cargo/bin"
    log "cargo build --release -p bench"
    (cd "$ROOT" && timeout 1800 cargo build --release -p bench) >&2 || die "cargo build failed"
fi
RING_BENCH=${RING_BENCH:-$ROOT/target/release/ring-bench}
POOL_BENCH=${POOL_BENCH:-$ROOT/target/release/pool-bench}
[[ -x $RING_BENCH && -x $POOL_BENCH ]] || die "ring-bench or pool-bench not found"

# ------------------------------------------------------- runners ----
# Each runner writes its raw output to $WORK/<name>.r<round>.log and appends
# "table side round key unit value" lines to $WORK/facts.

# DPDK's ring_perf_autotest output (22.11), by section:
#   "### Testing single element enq/deq ###" / "burst enq/deq" / "bulk enq/deq":
#       "<api>: SP/SC: bulk (size: 8): 26.55" = cycles of one enqueue of n plus
#       one dequeue of n (single: n = 1), on the main lcore; / n -> cyc/elem
#   "### Testing empty bulk deq ###": cycles of one failed dequeue of 8 (cyc/call)
#   "### Testing using two physical cores ###" (or "two hyperthreads"): producer
#       plus consumer cycles per element
#   "### Testing using all worker nodes ###": "Core [i] count = C" pairs of MP/MC
#       bulk enq+deq of n in 100 ms (TIME_MS) per core, then "Total count
#       (size: n): T"; -> cores * hz * 0.1 / (T * n) cyc/elem, hz = DPDK's TSC
#       rate as rte_get_tsc_hz() reports it (printed by dpdk-pool-bench)
#   <api> is "legacy APIs" (8-byte elements) or "elem APIs: element size 16B".
parse_dpdk_ring() {   # parse_dpdk_ring LOG ROUND HZ
    awk -v r="$2" -v hz="$3" '
    /^### Testing / {
        sec = "?"
        if ($0 ~ /single element/) sec = "single"
        else if ($0 ~ /burst enq/) sec = "burst"
        else if ($0 ~ /bulk enq/) sec = "bulk"
        else if ($0 ~ /empty bulk deq/) sec = "empty"
        else if ($0 ~ /two physical cores|two hyperthreads/) sec = "2core"
        else if ($0 ~ /all worker nodes/) sec = "allcores"
        next
    }
    /^(legacy APIs|elem APIs: element size [0-9]+B): (SP\/SC|MP\/MC): / {
        size = 8
        if ($0 ~ /^elem APIs/) { s = $0; sub(/^elem APIs: element size /, "", s); sub(/B:.*/, "", s); size = s }
        sync = ($0 ~ /: SP\/SC: /) ? "spsc" : "mpmc"
        n = 1
        if ($0 ~ /\(size: [0-9]+\)/) { s = $0; sub(/.*\(size: /, "", s); sub(/\).*/, "", s); n = s }
        v = $NF
        if (sec == "single" || sec == "burst" || sec == "bulk") { unit = "cyc/elem"; v = v / n }
        else if (sec == "empty") unit = "cyc/call"
        else if (sec == "2core") unit = "cyc/elem"
        else next
        printf "ring dpdk %s %sB/%s/%s/%s %s %.4f\n", r, size, sec, sync, n, unit, v
        next
    }
    sec == "allcores" && /^Bulk enq\/dequeue count on size [0-9]+$/ { n = $NF; cores = 0; next }
    sec == "allcores" && /^Core \[[0-9]+\] count = [0-9]+$/ { cores++; next }
    sec == "allcores" && /^Total count \(size: [0-9]+\): [0-9]+$/ {
        if ($NF > 0 && hz > 0)
            printf "ring dpdk %s %sB/allcores/mpmc/%s cyc/elem %.4f\n", r, size, n, cores * hz * 0.1 / ($NF * n)
        next
    }' "$1"
}

# Our lines: "ring case=KEY value=V unit=U ..." and, for both pool programs,
# "pool impl=I cache=C cores=K bulk=B n_keep=128 mops=M cycles_per_obj=X ...".
parse_kv() {   # parse_kv LOG ROUND
    awk -v r="$2" '
    function kv(    i, p) { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
    $1 == "ring" && $2 ~ /^case=/ { kv(); printf "ring ours %s %s %s %s\n", r, f["case"], f["unit"], f["value"] }
    $1 == "pool" && $2 ~ /^impl=/ { kv(); printf "pool %s %s cache%s/%score/bulk%s cyc/obj %s\n", f["impl"], r, f["cache"], f["cores"], f["bulk"], f["cycles_per_obj"] }
    ' "$1"
}

run() {   # run NAME ROUND CMD...: raw output to $WORK/NAME.rROUND.log, fails loudly
    local name=$1 r=$2 out rc=0; shift 2
    out=$WORK/$name.r$r.log
    timeout -k 5 "$RUN_LIMIT" "$@" >"$out" 2>"$out.err" || rc=$?
    ((rc == 0)) || { tail -20 "$out.err" "$out" >&2; die "$name (round $r) failed with status $rc"; }
    RUN_OUT=$out
}

DPDK_HZ=""
run_dpdk_pool() {
    run dpdk-pool "$1" "$DPDK_POOL" "${EAL[@]}" -- --seconds "$POOL_SECONDS"
    DPDK_HZ=$(awk '$1 == "pool" && $2 == "bench" { for (i = 3; i <= NF; i++) if ($i ~ /^tsc_hz=/) { sub(/tsc_hz=/, "", $i); print $i; exit } }' "$RUN_OUT")
    [[ -n $DPDK_HZ ]] || die "dpdk-pool-bench printed no tsc_hz"
    parse_kv "$RUN_OUT" "$1" >>"$WORK/facts"
}
run_ours_pool() {
    run ours-pool "$1" "$POOL_BENCH" --cpus "$CPUS" --seconds "$POOL_SECONDS" "${OURS_MEM[@]}"
    parse_kv "$RUN_OUT" "$1" >>"$WORK/facts"
}
run_dpdk_ring() {   # needs DPDK_HZ (the all-cores counts are per 100 ms)
    run dpdk-ring "$1" env DPDK_TEST=ring_perf_autotest dpdk-test "${EAL[@]}"
    grep -q '^Test OK' "$RUN_OUT" || { tail -20 "$RUN_OUT" >&2; die "ring_perf_autotest did not print 'Test OK'"; }
    local before after
    before=$(wc -l <"$WORK/facts")
    parse_dpdk_ring "$RUN_OUT" "$1" "$DPDK_HZ" >>"$WORK/facts"
    after=$(wc -l <"$WORK/facts")
    ((after > before)) || { head -30 "$RUN_OUT" >&2; die "no case recognised in ring_perf_autotest's output (format changed?)"; }
}
run_ours_ring() {
    local quick=(); [[ $QUICK != 0 ]] && quick=(--quick)
    run ours-ring "$1" "$RING_BENCH" --cpus "$CPUS" --runs 1 "${quick[@]}"
    parse_kv "$RUN_OUT" "$1" >>"$WORK/facts"
}

# ------------------------------------------------------- rounds ----
: >"$WORK/facts"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M UTC')
log "rounds=$ROUNDS pool_seconds=$POOL_SECONDS cpus=$CPUS memory=$MEMORY quick=$QUICK load=$LOAD_START"
for ((r = 1; r <= ROUNDS; r++)); do
    # The pool pair first: the DPDK ring figures need DPDK's TSC rate, which
    # dpdk-pool-bench prints. Odd rounds run DPDK first, even rounds ours.
    if ((r % 2)); then
        log "round $r/$ROUNDS: DPDK pool, ours pool, DPDK ring, ours ring"
        run_dpdk_pool "$r"; run_ours_pool "$r"; run_dpdk_ring "$r"; run_ours_ring "$r"
    else
        log "round $r/$ROUNDS: ours pool, DPDK pool, ours ring, DPDK ring"
        run_ours_pool "$r"; run_dpdk_pool "$r"; run_ours_ring "$r"; run_dpdk_ring "$r"
    fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------- report ----
OURS_HZ=$(awk '$1 == "ring" && $2 == "bench" { for (i = 3; i <= NF; i++) if ($i ~ /^tsc_hz=/) { sub(/tsc_hz=/, "", $i); print $i; exit } }' "$WORK"/ours-ring.r1.log)
MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "# bench-micro: $START, $(nproc) CPUs ($MODEL), Linux $(uname -r), $(pkg-config --modversion libdpdk | sed 's/^/DPDK /'), fastpath $COMMIT"
echo "# rounds=$ROUNDS (DPDK and ours alternate; median over rounds, min-max in brackets) cpus=$CPUS memory=$MEMORY pool_seconds=$POOL_SECONDS quick=$QUICK"
echo "# TSC cycles; tsc_hz DPDK=$DPDK_HZ ours=$OURS_HZ; ratio = ours / DPDK (< 1: ours takes fewer cycles); load average at start $LOAD_START, at end $LOAD_END"

status=0
awk -v rounds="$ROUNDS" '
function median(list,    a, k, m, i, j, t) {
    k = split(list, a, " ")
    for (i = 2; i <= k; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    lo = a[1]; hi = a[k]
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function cell(t, side, key,    m) {
    if (!((t, side, key) in vals)) return "n/a"
    m = median(vals[t, side, key])
    med[t, side, key] = m
    return sprintf("%.2f (%.2f-%.2f)", m, lo, hi)
}
function ratio(t, a, b, key) {
    if (!((t, a, key) in med) || !((t, b, key) in med) || med[t, b, key] <= 0) return "n/a"
    return sprintf("%.2fx", med[t, a, key] / med[t, b, key])
}
function why(present) {
    # A case one program printed and the other did not.
    return "n/a: only" present " printed it"
}
{
    t = $1; side = $2; key = $4; unit[t, key] = $5
    vals[t, side, key] = ((t, side, key) in vals) ? vals[t, side, key] " " $6 : $6
    if (!((t, key) in seen)) { seen[t, key] = 1; order[t, ++nk[t]] = key }
    if (index(sides[t, key] " ", " " side " ") == 0) sides[t, key] = sides[t, key] " " side
}
END {
    printf "\n## ring: ring_perf_autotest (dpdk-test) vs ring-bench\n\n"
    print "| case | unit | DPDK rte_ring | ours | ours / DPDK |"
    print "|---|---|---:|---:|---:|"
    for (i = 1; i <= nk["ring"]; i++) {
        key = order["ring", i]
        d = cell("ring", "dpdk", key); o = cell("ring", "ours", key); q = ratio("ring", "ours", "dpdk", key)
        if (q == "n/a") { unpaired++; q = why(sides["ring", key]) } else paired++
        printf "| %s | %s | %s | %s | %s |\n", key, unit["ring", key], d, o, q
        line[++nl] = sprintf("micro ring %s unit=%s dpdk=%s ours=%s ratio=%s", key, unit["ring", key],
            (("ring", "dpdk", key) in med) ? sprintf("%.2f", med["ring", "dpdk", key]) : "n/a",
            (("ring", "ours", key) in med) ? sprintf("%.2f", med["ring", "ours", key]) : "n/a", q)
    }
    printf "\n## pool: dpdk-pool-bench (rte_mempool get/put = raw, rte_pktmbuf alloc/free = mbuf) vs pool-bench\n\n"
    print "| case (n_keep 128) | DPDK raw get/put | ours raw get_bulk/put_bulk | ours raw / DPDK raw | DPDK pktmbuf alloc/free | ours alloc_bulk/free_bulk | ours / pktmbuf |"
    print "|---|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nk["pool"]; i++) {
        key = order["pool", i]
        a = cell("pool", "dpdk_raw", key); b = cell("pool", "dpdk_mbuf", key); o = cell("pool", "ours", key); w = cell("pool", "ours_raw", key)
        qa = ratio("pool", "ours_raw", "dpdk_raw", key); qb = ratio("pool", "ours", "dpdk_mbuf", key)
        if (qa == "n/a" || qb == "n/a") { unpaired++; if (qa == "n/a") qa = why(sides["pool", key]); if (qb == "n/a") qb = why(sides["pool", key]) } else paired++
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", key, a, w, qa, b, o, qb
        line[++nl] = sprintf("micro pool %s unit=cyc/obj dpdk_raw=%s ours_raw=%s dpdk_mbuf=%s ours=%s ratio_raw=%s ratio_mbuf=%s", key,
            (("pool", "dpdk_raw", key) in med) ? sprintf("%.2f", med["pool", "dpdk_raw", key]) : "n/a",
            (("pool", "ours_raw", key) in med) ? sprintf("%.2f", med["pool", "ours_raw", key]) : "n/a",
            (("pool", "dpdk_mbuf", key) in med) ? sprintf("%.2f", med["pool", "dpdk_mbuf", key]) : "n/a",
            (("pool", "ours", key) in med) ? sprintf("%.2f", med["pool", "ours", key]) : "n/a", qa, qb)
    }
    print ""
    for (i = 1; i <= nl; i++) print line[i]
    printf "micro summary cases=%d paired=%d unpaired=%d rounds=%d\n", paired + unpaired, paired + 0, unpaired + 0, rounds
    exit (unpaired > 0) ? 3 : 0
}' "$WORK/facts" >"$WORK/report" || status=$?
cat "$WORK/report"
if ((status == 3)); then
    log "some cases have a figure on one side only (n/a above)"
    [[ ${REQUIRE_PAIRED:-0} == 0 ]] || exit 1
elif ((status != 0)); then
    die "the report failed (awk status $status)"
fi
