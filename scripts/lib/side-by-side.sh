# side-by-side.sh -- what the scripts that run DPDK next to fastpath share
# (compare-testpmd.sh, compare-afpacket.sh, bench-micro.sh); sourced, after
# each has set WORK (its temporary directory) and PFX (its DPDK
# --file-prefix). The testpmd helpers (wait_log, tp) use TP_PID and TP_FD,
# the running testpmd and the write end of its input fifo.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# DPDK keeps a runtime directory per --file-prefix under /var/run/dpdk.
# Remove it only if this script made /var/run/dpdk itself.
DPDK_RUNDIR_NEW=1
[[ -d /var/run/dpdk ]] && DPDK_RUNDIR_NEW=""

# remove_work_and_rundir: for the EXIT trap.
remove_work_and_rundir() {
    rm -rf "$WORK" "/var/run/dpdk/$PFX"
    [[ -n "$DPDK_RUNDIR_NEW" ]] && rmdir /var/run/dpdk 2>/dev/null
    return 0
}

# apt_install_missing LOG PKG...: installs those of PKG that are not installed
# yet, retrying while someone else holds the dpkg lock; apt-get's output goes
# to LOG. Returns 0 once all are installed; otherwise prints LOG's tail to
# stderr and returns 1.
apt_install_missing() {
    local aptlog=$1 p try
    local missing=()
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    printf '[%(%H:%M:%S)T] installing %s\n' -1 "${missing[*]}" >&2
    for try in 1 2 3 4 5; do
        if timeout 600 apt-get -o DPkg::Lock::Timeout=120 update -qq >"$aptlog" 2>&1 &&
           DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get -o DPkg::Lock::Timeout=120 \
               install -y -q "${missing[@]}" >>"$aptlog" 2>&1; then
            return 0
        fi
        ((try < 5)) || break
        printf '[%(%H:%M:%S)T] apt-get attempt %d failed, retrying\n' -1 "$try" >&2
        sleep 15
    done
    tail -20 "$aptlog" >&2
    return 1
}

# wait_log FILE START_LINE PATTERN [COUNT]: wait until PATTERN appears COUNT
# times after line START_LINE of FILE (testpmd's output), at most 20 s.
wait_log() {
    local i
    for ((i = 0; i < 200; i++)); do
        (($(tail -n +"$(($2 + 1))" "$1" | grep -c -- "$3") >= ${4:-1})) && return 0
        kill -0 "$TP_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$1" >&2; die "testpmd: no '$3' in its output"
}
nap() { sleep "$1" & wait $!; }   # sleep that lets INT/TERM through at once
tp() { printf '%s\n' "$1" >&"$TP_FD"; }   # a line to testpmd's prompt

median() {    # median FMT V1 V2 ...
    local f=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v f="$f" '{v[NR] = $1}
        END {printf f, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
