#!/usr/bin/env bash
# The container test (issue 16, item 4): builds the runtime image
# (container/Containerfile) with buildah, runs it with podman with only what
# the Deployment in k8s/ grants (capabilities IPC_LOCK and NET_ADMIN, every
# other one dropped, no privilege escalation, a read-only root with a
# writable /run/fastpath, /dev/net/tun, hugepages), and drives it with
# `podman exec <ctr> fastpath ...` the way an operator uses `kubectl exec`.
#
# As root on Debian bookworm; installs buildah, podman, runc and
# busybox-static when missing. Removes the containers, image and mounts it
# made, also those a killed earlier run left. Every step is bounded by a
# timeout.
#
# Each check prints PASS, FAIL or SKIP with its name; a check of a
# subcommand this binary does not have yet (`fastpath help` lists them) is
# SKIP with that reason. Closes with
#   container-test: tests: N passed, M failed, K skipped
# (.ci/run adds it to the CI tally). Exit status 0 when nothing failed.
#
# Env: CONTAINER_TEST_BINARY=PATH  use this static fastpath, build none
#      CONTAINER_TEST_KEEP=1       keep the image at the end
#      CONTAINER_TEST_VERBOSE=1    show the output of passing checks too
set -euo pipefail
cd "$(dirname "$0")/.."

tag=localhost/fastpath:container-test
run_ctr=fastpath-ct-run
huge_ctr=fastpath-ct-huge
daemon_ctr=fastpath-ct-daemon
storage=vfs
# The podman adjustments this kernel needs (shared/reference/containers.md):
# runc, since crun refuses the hybrid cgroup layout; cgroupfs; vfs storage;
# and a containers.conf that leaves the default ulimits alone.
export CONTAINERS_CONF=$PWD/container/containers.conf
podman=(podman --storage-driver "$storage" --runtime runc --cgroup-manager cgroupfs)
# What k8s/deployment.yaml grants, and nothing more: the capabilities, no
# privilege escalation (allowPrivilegeEscalation: false), a read-only root
# (readOnlyRootFilesystem: true, and no tmpfs podman would add on its own)
# with the control socket's emptyDir, /dev/net/tun (needVhostNet), and the
# pod's own network namespace with no interface but lo (SR-IOV VFs are
# not netdevs once on vfio-pci).
# shellcheck disable=SC2054 # the commas are tmpfs mount options
least=(--cap-drop ALL --cap-add IPC_LOCK --cap-add NET_ADMIN
    --security-opt no-new-privileges
    --read-only --read-only-tmpfs=false --tmpfs /run/fastpath:rw,mode=0700
    --device /dev/net/tun --network none)

t0=$SECONDS
pass=0 fail=0 skip=0
say() { echo "container-test: $*"; }
result() { # STATUS NAME [REASON]
    local status=$1 name=$2 why=${3:-}
    case $status in
    PASS) pass=$((pass + 1)) ;;
    FAIL) fail=$((fail + 1)) ;;
    SKIP) skip=$((skip + 1)) ;;
    esac
    printf 'container-test: %s %s%s\n' "$status" "$name" "${why:+ ($why)}"
}
tally() {
    say "tests: $pass passed, $fail failed, $skip skipped"
}
# check NAME FUNCTION [ARGS...]: the function's status 0 is PASS, 77 SKIP
# (its last output line is the reason), anything else FAIL (its output is
# shown).
check() {
    local name=$1 out rc=0 start=$SECONDS
    shift
    out=$("$@" 2>&1) || rc=$?
    case $rc in
    0)
        result PASS "$name" "$((SECONDS - start)) s"
        [[ -z ${CONTAINER_TEST_VERBOSE:-} ]] || printf '    | %s\n' "${out//$'\n'/$'\n    | '}"
        ;;
    77) result SKIP "$name" "$(tail -n 1 <<<"$out")" ;;
    *)
        result FAIL "$name" "status $rc"
        tail -n 25 <<<"$out" | sed 's/^/    | /'
        ;;
    esac
}

# ---- clean-up: also what a killed earlier run left behind
huge_mnt=''
cleanup() {
    local c
    for c in "$run_ctr" "$huge_ctr" "$daemon_ctr"; do
        timeout 60 "${podman[@]}" rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    if [[ -z ${CONTAINER_TEST_KEEP:-} ]]; then
        timeout 60 "${podman[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
    fi
    if [[ -n $huge_mnt ]]; then
        umount "$huge_mnt" 2>/dev/null || true
        rmdir "$huge_mnt" 2>/dev/null || true
    fi
}

if [[ $(id -u) -ne 0 ]]; then
    result SKIP container "needs root: podman and buildah run rootful here (sudo $0)"
    tally
    exit 0
fi

# ---- set-up: packages, binary, image. A failed step fails the test.
setup_failed() {
    result FAIL "$1" "$2"
    tally
    exit 1
}
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[[ -x /bin/busybox ]] || need+=(busybox-static)
if ((${#need[@]})); then
    start=$SECONDS
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null; } ||
        setup_failed install "apt-get install ${need[*]} failed"
    say "installed ${need[*]} in $((SECONDS - start)) s"
fi
cleanup

start=$SECONDS
if [[ -n ${CONTAINER_TEST_BINARY:-} ]]; then
    binary=$CONTAINER_TEST_BINARY
else
    RUSTFLAGS='-C target-feature=+crt-static' timeout 1800 \
        cargo build --release --locked --target x86_64-unknown-linux-gnu -p fastpath ||
        setup_failed build-binary "the static release build failed"
    binary=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/fastpath
    say "static fastpath built in $((SECONDS - start)) s"
fi
trap cleanup EXIT
# A timeout (CI's) or Ctrl-C still removes the containers and the image.
trap 'exit 143' TERM
trap 'exit 130' INT
start=$SECONDS
timeout 600 scripts/container-build.sh --binary "$binary" --tag "$tag" >/tmp/fastpath-ct-build.log 2>&1 || {
    tail -n 25 /tmp/fastpath-ct-build.log | sed 's/^/    | /'
    setup_failed build-image "scripts/container-build.sh failed"
}
rm -f /tmp/fastpath-ct-build.log
say "image $tag built in $((SECONDS - start)) s"

# The subcommands this binary has: the first word of each line under
# "Commands:" in clap's help. Every check below needs its subcommand: one
# missing from the binary is a failure, not a skip.
subcommands=$(timeout 60 "${podman[@]}" run --rm "${least[@]}" "$tag" help 2>&1 |
    awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }')
say "subcommands in the image: $(tr '\n' ' ' <<<"$subcommands")"
has() { grep -qx "$1" <<<"$subcommands"; }
absent() { # SUBCOMMAND: status 1 with the reason
    echo "'fastpath $1' is not in this binary (fastpath help lists: $(tr '\n' ' ' <<<"$subcommands"))"
    return 1
}
# Every line of fastpath's final summary that says the run ended well: the
# statistics header, and the buffer audit with all buffers back.
ended_well() { # OUTPUT
    grep -q -- '---- final statistics after' <<<"$1" || {
        echo "no final statistics line"
        return 1
    }
    grep -Eq '^buffers: ([0-9]+) of \1 back in the pool' <<<"$1" || {
        echo "the buffer audit line is missing or short"
        return 1
    }
}

# ---- the checks

# The image holds the binary and the sample fast-path.env, byte for byte.
c_image_contents() {
    # Checks run with errexit off (inside `||`): each failure returns.
    local env
    env=$(timeout 60 "${podman[@]}" run --rm "${least[@]}" --entrypoint /bin/cat "$tag" /etc/fast-path.env) || return 1
    diff <(printf '%s\n' "$env") config/fast-path.env.sample || {
        echo "/etc/fast-path.env in the image differs from config/fast-path.env.sample"
        return 1
    }
    timeout 60 "${podman[@]}" image inspect --format '{{.Size}}' "$tag" |
        awk '{ printf "image size %.1f MiB\n", $1 / 1048576 }'
}
check image-contents c_image_contents

# The main process, as the Deployment starts it but on null ports: exit 0
# and the final summary.
c_run_null() {
    local out rc=0
    out=$(timeout 120 "${podman[@]}" run --name "$run_ctr" "${least[@]}" "$tag" \
        run --no-huge --ports null,null --duration 3 2>&1) || rc=$?
    timeout 60 "${podman[@]}" rm -f "$run_ctr" >/dev/null 2>&1 || true
    echo "$out"
    ((rc == 0)) || {
        echo "exit status $rc"
        return 1
    }
    ended_well "$out"
}
check run-null-ports c_run_null

# The same on hugepages from a hugetlbfs mount, as the Deployment's
# `medium: HugePages` emptyDir gives them: IPC_LOCK is enough to map and
# lock them. A hugetlbfs instance of our own, unmounted at the end, so the
# host's mounts are left alone.
c_run_huge() {
    local free out rc=0
    grep -qw hugetlbfs /proc/filesystems || {
        echo "the kernel has no hugetlbfs"
        return 77
    }
    free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
    ((free > 0)) || {
        echo "no free 2M hugepages: reserve some (echo 64 > /proc/sys/vm/nr_hugepages, or scripts/host/hugepages.sh --size 2M --count 64)"
        return 77
    }
    out=$(timeout 120 "${podman[@]}" run --name "$huge_ctr" "${least[@]}" \
        -v "$huge_mnt:/dev/hugepages" "$tag" \
        run --huge-dir /dev/hugepages --ports null,null --duration 2 2>&1) || rc=$?
    timeout 60 "${podman[@]}" rm -f "$huge_ctr" >/dev/null 2>&1 || true
    echo "$out"
    ((rc == 0)) || {
        echo "exit status $rc ($free 2M pages were free)"
        return 1
    }
    grep -q 'hugetlbfs\|/dev/hugepages' <<<"$out" || {
        echo "the start-up line does not name the hugetlbfs pool"
        return 1
    }
    ended_well "$out"
}
if grep -qw hugetlbfs /proc/filesystems; then
    huge_mnt=$(mktemp -d /tmp/fastpath-ct-huge.XXXXXX)
    mount -t hugetlbfs -o pagesize=2M nodev "$huge_mnt" || {
        rmdir "$huge_mnt"
        huge_mnt=''
    }
fi
if [[ -n $huge_mnt ]] || ! grep -qw hugetlbfs /proc/filesystems; then
    check run-hugepages c_run_huge
else
    result FAIL run-hugepages "mount -t hugetlbfs failed"
fi

# A long-lived daemon for the exec checks, stopped by SIGTERM at the end
# (what a pod's termination sends). --duration bounds it if this script dies.
daemon_up=0
if timeout 60 "${podman[@]}" run -d --name "$daemon_ctr" "${least[@]}" "$tag" \
    run --no-huge --ports null,null --duration 300 --stats-period 0 >/dev/null; then
    # Up when its start-up line is out (at most 10 s).
    for _ in $(seq 50); do
        if timeout 10 "${podman[@]}" logs "$daemon_ctr" 2>&1 | grep -q '^fastpath: forwarding'; then
            daemon_up=1
            break
        fi
        sleep 0.2
    done
fi
dexec() { timeout "${EXEC_TIMEOUT:-30}" "${podman[@]}" exec "$daemon_ctr" "$@"; }
need_daemon() {
    ((daemon_up)) || {
        timeout 10 "${podman[@]}" logs "$daemon_ctr" 2>&1 | tail -n 10
        echo "the daemon container did not start"
        return 1
    }
}

c_version() {
    local want out
    need_daemon || return 1
    # The workspace's version (fastpath's is `version.workspace = true`).
    want=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
    out=$(dexec fastpath --version)
    echo "$out"
    [[ $out == "fastpath $want" ]] || {
        echo "expected 'fastpath $want'"
        return 1
    }
}
check exec-version c_version

c_run_help() {
    local out
    need_daemon || return 1
    out=$(dexec fastpath run --help)
    if ! grep -q -- '--ports' <<<"$out" || ! grep -q -- '--env' <<<"$out"; then
        echo "$out"
        echo "run --help does not describe --ports and --env"
        return 1
    fi
}
check exec-run-help c_run_help

# Exactly the two capabilities, effective and bounding: CAP_NET_ADMIN is
# bit 12, CAP_IPC_LOCK bit 14 (include/uapi/linux/capability.h).
c_caps() {
    local want status
    need_daemon || return 1
    want=$(printf '%016x' $(((1 << 12) | (1 << 14))))
    status=$(dexec cat /proc/1/status)
    grep -E '^Cap(Eff|Bnd|Prm):' <<<"$status"
    if ! grep -Eq "^CapEff:[[:space:]]+$want\$" <<<"$status" ||
        ! grep -Eq "^CapBnd:[[:space:]]+$want\$" <<<"$status"; then
        echo "expected CapEff and CapBnd $want (IPC_LOCK + NET_ADMIN)"
        return 1
    fi
    grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$status" || {
        echo "no_new_privs is not set"
        return 1
    }
}
check capabilities c_caps

# The read-only root, the writable socket directory, /dev/net/tun.
c_filesystem() {
    need_daemon || return 1
    if dexec sh -c 'echo x > /etc/fastpath-ct-probe' 2>/dev/null; then
        echo "the root filesystem is writable"
        return 1
    fi
    dexec sh -c 'echo x > /run/fastpath/probe && cat /run/fastpath/probe >/dev/null && rm /run/fastpath/probe' || {
        echo "/run/fastpath is not writable"
        return 1
    }
    dexec test -c /dev/net/tun || {
        echo "/dev/net/tun is missing"
        return 1
    }
}
check filesystem c_filesystem

# `fastpath check` under the manifest's privileges: the capability items
# are OK, nothing panics; FAIL items are allowed here (no VFs, no
# Kubernetes environment), a crash or usage error is not.
c_fp_check() {
    local out rc=0
    has check || absent check || return
    need_daemon || return 1
    out=$(dexec fastpath check 2>&1) || rc=$?
    echo "$out"
    ((rc <= 1)) || {
        echo "fastpath check: exit status $rc"
        return 1
    }
    # One finding a line: "OK   caps             IPC_LOCK NET_ADMIN".
    grep -Eq '^(OK|WARN|FAIL)[[:space:]]' <<<"$out" || {
        echo "no OK/WARN/FAIL item in the output"
        return 1
    }
    grep -Eq '^OK[[:space:]].*IPC_LOCK' <<<"$out" || {
        echo "no OK item naming IPC_LOCK, which the container has"
        return 1
    }
}
check fastpath-check c_fp_check

# The demo (simulated VFs fed by simulated hosts, no set-up), inside the
# container: hosts sent frames, every buffer came back.
c_demo() {
    local out rc=0 sent
    has demo || absent demo || return
    need_daemon || return 1
    out=$(EXEC_TIMEOUT=90 dexec fastpath demo --duration 3 2>&1) || rc=$?
    echo "$out"
    ((rc == 0)) || {
        echo "fastpath demo: exit status $rc"
        return 1
    }
    sent=$(sed -nE 's/^accounting:.*sent[[:space:]]+([0-9]+).*/\1/p' <<<"$out")
    ((${sent:-0} > 0)) || {
        echo "no 'accounting: ... sent N' line with N > 0"
        return 1
    }
    grep -Eq '^buffers: ([0-9]+) of \1 back in the pool' <<<"$out" || {
        echo "the buffer audit line is missing or short"
        return 1
    }
}
check demo c_demo

# The control socket: `show ports` against the running daemon.
c_show_ports() {
    local out rc=0
    has show || absent show || return
    need_daemon || return 1
    out=$(dexec fastpath show ports 2>&1) || rc=$?
    echo "$out"
    ((rc == 0)) || {
        echo "fastpath show ports: exit status $rc"
        return 1
    }
    grep -q 'null' <<<"$out" || {
        echo "the daemon's null ports are not listed"
        return 1
    }
    dexec fastpath show ports --json >/dev/null || {
        echo "fastpath show ports --json failed"
        return 1
    }
}
check show-ports c_show_ports

# `watch` prints live rates until stopped: two seconds of it.
c_watch() {
    local out rc=0
    has watch || absent watch || return
    need_daemon || return 1
    out=$(dexec timeout 2 fastpath watch 2>&1) || rc=$?
    echo "$out"
    # busybox timeout stops it with SIGTERM: 143 (or 124 for GNU timeout).
    ((rc == 0 || rc == 124 || rc == 143)) || {
        echo "fastpath watch: exit status $rc"
        return 1
    }
    grep -qi 'pps' <<<"$out" || {
        echo "no rate in watch's output"
        return 1
    }
}
check watch c_watch

# SIGTERM to PID 1, as a pod's termination sends it: a clean stop with the
# final summary, exit status 0.
c_stop() {
    local rc logs
    need_daemon || return 1
    timeout 60 "${podman[@]}" stop -t 20 "$daemon_ctr" >/dev/null
    rc=$(timeout 30 "${podman[@]}" inspect --format '{{.State.ExitCode}}' "$daemon_ctr")
    logs=$(timeout 30 "${podman[@]}" logs "$daemon_ctr" 2>&1)
    tail -n 6 <<<"$logs"
    [[ $rc == 0 ]] || {
        echo "exit status $rc after SIGTERM"
        return 1
    }
    ended_well "$logs"
}
check sigterm-stop c_stop

cleanup
trap - EXIT
say "done in $((SECONDS - t0)) s"
tally
((fail == 0))
