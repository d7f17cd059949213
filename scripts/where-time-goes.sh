#!/usr/bin/env bash
# where-time-goes.sh -- what each piece of the forwarding loop costs per packet,
# found by taking it out. This VM has no hardware performance counters, so the
# cost of a piece is the cycles per packet of fwd-bench as committed minus
# those of a build without that piece, timed interleaved on one core.
#
# Each scripts/where-time-goes/NAME.patch removes one piece of work. Its first
# lines say which cases it applies to and what it removes:
#   cases: null-io null-mac ring-io ring-io-1024
#   piece: the receive-side header reset (...)
# A piece is removed only where the case still forwards without it (without
# the receive reset, mac mode would see empty frames and drop them all).
# The builds are made from HEAD (committed work only) in a temporary git
# worktree, with their own target directory (target/where-time-goes). A patch
# that no longer applies stops the script: update it with the code.
#
# Cases: null-io, null-mac (two null ports), ring-io (two ring ports, 64
# packets in flight: testpmd's `start tx_first`), ring-io-1024 (the same with
# 1024 in flight, whose buffer headers no longer all fit in L1).
# Usage: scripts/where-time-goes.sh        (about 6 minutes of building, then
#        ROUNDS x cases x builds runs of DURATION + WARMUP seconds)
# Env knobs: ROUNDS=3 DURATION=2 WARMUP=0.5 CPU=1 (the worker's CPU)
# Output, one line per case and build, then the load:
#   where case=null-io piece=full mpps=.. cycles_per_pkt=.. runs=[..]
#   where case=null-io piece=NAME mpps=.. cycles_per_pkt=.. cost=.. runs=[..]
# mpps and cycles_per_pkt are medians over the rounds; cycles_per_pkt is the
# TSC rate over the packet rate (one core, so wall-clock cycles, the same for
# a build that reads no TSC in its loop); cost = full's cycles_per_pkt minus
# this build's: what the removed piece costs.
set -euo pipefail
export LC_ALL=C
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-2} WARMUP=${WARMUP:-0.5} CPU=${CPU:-1}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
patches="$repo/scripts/where-time-goes"
target="$repo/target/where-time-goes"
tmp=$(mktemp -d /tmp/where-time-goes.XXXXXX)
tree="$tmp/tree"
cleanup() {
    git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

declare -A case_args=(
    [null-io]="--mode io --ports null"
    [null-mac]="--mode mac --ports null"
    [ring-io]="--mode io --ports ring --tx-first 1"
    [ring-io-1024]="--mode io --ports ring --tx-first 16"
)
cases=(null-io null-mac ring-io ring-io-1024)

git -C "$repo" worktree add --detach "$tree" HEAD >/dev/null 2>&1
build() { # NAME: build fwd-bench in the worktree as it is now, keep it as $tmp/NAME
    log "build $1"
    # Warnings off: a build without a piece leaves some code unused.
    (cd "$tree" && RUSTFLAGS="${RUSTFLAGS:-} -A warnings" CARGO_TARGET_DIR="$target" \
        cargo build --release -q -p bench --bin fwd-bench)
    cp "$target/release/fwd-bench" "$tmp/$1"
}
build full
declare -A applies piece
names=()
for p in "$patches"/*.patch; do
    name=$(basename "$p" .patch)
    applies[$name]=$(sed -n 's/^cases: //p' "$p" | head -n 1)
    piece[$name]=$(sed -n 's/^piece: //p' "$p" | head -n 1)
    git -C "$tree" apply "$p" || { echo "where-time-goes: $p does not apply to HEAD" >&2; exit 1; }
    build "$name"
    git -C "$tree" checkout -q -- .
    names+=("$name")
done

declare -A mpps cpp
run() { # CASE BUILD: one run; appends its Mpps and cycles/pkt
    local out err
    err=$(mktemp "$tmp/err.XXXXXX")
    # shellcheck disable=SC2086  # the case's arguments are a word list
    out=$("$tmp/$2" ${case_args[$1]} --cpus "$CPU" --duration "$DURATION" --warmup "$WARMUP" \
        2>"$err" | tail -n 1) || true
    local mhz m
    mhz=$(sed -n 's/.*TSC \([0-9.]*\) MHz.*/\1/p' "$err" | tail -n 1)
    m=$(sed -n 's/.* mpps=\([0-9.]*\) .*/\1/p' <<<"$out")
    # A build that forwards nothing (0 Mpps) has no per-packet figure.
    if [[ -n "$m" && -n "$mhz" ]] && awk -v m="$m" 'BEGIN {exit !(m > 0)}'; then
        mpps[$1/$2]+="$m "
        cpp[$1/$2]+="$(awk -v h="$mhz" -v m="$m" 'BEGIN {printf "%.2f", (m > 0) ? h / m : 0}') "
    else
        log "$1 $2: no figure ($(tail -n 1 "$err"))"
    fi
}
median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "-"}'; }

for ((r = 1; r <= ROUNDS; r++)); do
    log "round $r of $ROUNDS"
    for c in "${cases[@]}"; do
        run "$c" full
        for n in "${names[@]}"; do
            [[ " ${applies[$n]} " == *" $c "* ]] && run "$c" "$n"
        done
    done
done
for c in "${cases[@]}"; do
    full_cpp=$(median <<<"${cpp[$c/full]:-}")
    echo "where case=$c piece=full mpps=$(median <<<"${mpps[$c/full]:-}") cycles_per_pkt=$full_cpp runs=[${cpp[$c/full]% }]"
    for n in "${names[@]}"; do
        [[ " ${applies[$n]} " == *" $c "* ]] || continue
        without=$(median <<<"${cpp[$c/$n]:-}")
        cost=$(awk -v a="$full_cpp" -v b="$without" 'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%.2f", a - b}')
        echo "where case=$c piece=$n mpps=$(median <<<"${mpps[$c/$n]:-}") cycles_per_pkt=$without cost=$cost runs=[${cpp[$c/$n]% }]"
    done
done
for n in "${names[@]}"; do echo "# $n: ${piece[$n]}"; done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
