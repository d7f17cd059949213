#!/usr/bin/env bash
# fwd-ab.sh -- interleaved A/B of fwd-bench builds (old vs new, or a build
# with one piece of work removed), for judging a change on a noisy machine.
#
# Usage: scripts/fwd-ab.sh ROUNDS 'FWD-BENCH ARGS' BIN_A BIN_B [BIN_C ...]
#   e.g. scripts/fwd-ab.sh 3 '--mode io --cpus 1 --duration 2 --warmup 0.5' \
#            /tmp/fwd-bench-old target/release/fwd-bench
# Each round runs every binary once, in the order given; then one line per
# binary: median Mpps [each run], median cycles/pkt [each run]; last line the
# load average. A run that prints no figure is shown as '-'.
set -uo pipefail
export LC_ALL=C
(($# >= 3)) || { sed -n 2,12p "$0" >&2; exit 2; }
rounds=$1 args=$2; shift 2
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
declare -A mpps cpp
for ((r = 1; r <= rounds; r++)); do
    for b in "$@"; do
        # shellcheck disable=SC2086  # ARGS is a word list on purpose
        last=$("$b" $args 2>/dev/null | tail -n 1)
        if [[ "$last" =~ mpps=([0-9.]+)\ cycles_per_pkt=([0-9.]+)$ ]]; then
            mpps[$b]+="${BASH_REMATCH[1]} " cpp[$b]+="${BASH_REMATCH[2]} "
        else
            mpps[$b]+="- " cpp[$b]+="- "
        fi
    done
done
median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g |
    awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "-"}'; }
for b in "$@"; do
    printf '%s mpps med=%s [%s] cycles_per_pkt med=%s [%s]\n' "$b" \
        "$(median <<<"${mpps[$b]}")" "${mpps[$b]% }" "$(median <<<"${cpp[$b]}")" "${cpp[$b]% }"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
