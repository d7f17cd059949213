#!/usr/bin/env bash
# Builds the VM lab test binaries (integration test targets named lab_*,
# e.g. drivers/tests/lab_smoke.rs) as static executables, because the lab
# guest's initramfs has no glibc, and prints their paths, one a line, on
# stdout. Everything else (cargo's progress) goes to stderr.
#
# Only the lab_* test targets are compiled (cargo's --test glob), in every
# package of the workspace (drivers/tests/lab_*.rs, fastpath/tests/lab_*.rs).
# With --with-tools it also prints, as "tool PATH" lines, the binaries the
# lab tests run (the `fastpath` binary, which cargo builds, static too,
# for the integration tests of its package); run.sh puts those in the
# guest's /bin rather than running them.
# Static glibc: -C target-feature=+crt-static with an explicit --target, so
# the flag reaches only the target code, not build scripts or proc macros.
# The binaries go to target/vmlab/ so the normal build is not invalidated.
# Env: CARGO_PROFILE (default: dev, i.e. cargo's test profile),
#      VMLAB_CARGO_ARGS (extra cargo arguments, e.g. "-p drivers").
set -euo pipefail
with_tools=
[[ ${1:-} == --with-tools ]] && with_tools=1
cd "$(dirname "$0")/../.."

TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/vmlab}
# --cfg fastpath_lab: the lab tests exist only in this build (each lab_*.rs is
# #![cfg(fastpath_lab)]), so a host's `cargo test` neither runs nor counts them.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg fastpath_lab"

command -v jq >/dev/null || {
    echo "build-tests.sh: jq is missing (apt-get install jq)" >&2
    exit 1
}

profile=()
[[ -n "${CARGO_PROFILE:-}" ]] && profile=(--profile "$CARGO_PROFILE")
# cargo's JSON goes to a file first: inside a process substitution its exit
# status would be lost, and a lab test that does not compile would silently
# drop out of the run (which would then pass).
json=$(mktemp /tmp/vmlab-build.XXXXXX)
trap 'rm -f "$json"' EXIT
# shellcheck disable=SC2086 # VMLAB_CARGO_ARGS is a word list on purpose
if ! cargo test --workspace --no-run --test 'lab_*' --target "$TARGET" "${profile[@]}" \
    ${VMLAB_CARGO_ARGS:-} --message-format=json-render-diagnostics >"$json"; then
    echo "build-tests.sh: cargo could not build the lab_* tests (errors above)" >&2
    exit 1
fi
mapfile -t bins < <(
    jq -r 'select(.reason == "compiler-artifact" and .executable != null
                  and .profile.test == true and (.target.kind | index("test"))
                  and (.target.name | startswith("lab_"))) | .executable' "$json" |
        # A fixed order (by file name), so two runs of the lab do the same.
        awk -F/ '{print $NF "\t" $0}' | sort | cut -f2-
)
mapfile -t tools < <(
    jq -r 'select(.reason == "compiler-artifact" and .executable != null
                  and .profile.test == false and (.target.kind | index("bin"))
                  and .target.name == "fastpath") | .executable' "$json" | sort -u
)
if ((${#bins[@]} == 0)); then
    echo "build-tests.sh: no lab_* test targets found (expected e.g. drivers/tests/lab_smoke.rs)" >&2
    exit 1
fi
for bin in "${bins[@]}" "${tools[@]}"; do
    if command -v file >/dev/null && file -b "$bin" | grep -q 'dynamically linked'; then
        echo "build-tests.sh: $bin is dynamically linked; the lab guest cannot run it" >&2
        exit 1
    fi
done
printf '%s\n' "${bins[@]}"
if [[ -n $with_tools ]]; then
    ((${#tools[@]})) || {
        echo "build-tests.sh: the fastpath binary was not built (no fastpath/tests/lab_* target?)" >&2
        exit 1
    }
    printf 'tool %s\n' "${tools[@]}"
fi
