#!/usr/bin/env bash
# Builds the VM lab test binaries (integration test targets named lab_*,
# e.g. drivers/tests/lab_smoke.rs) as static executables, because the lab
# guest's initramfs has no glibc, and prints their paths, one a line, on
# stdout. Everything else (cargo's progress) goes to stderr.
#
# Only the lab_* test targets are compiled (cargo's --test glob).
# Static glibc: -C target-feature=+crt-static with an explicit --target, so
# the flag reaches only the target code, not build scripts or proc macros.
# The binaries go to target/vmlab/ so the normal build is not invalidated.
# Env: CARGO_PROFILE (default: dev, i.e. cargo's test profile),
#      VMLAB_CARGO_ARGS (extra cargo arguments, e.g. "-p drivers").
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/vmlab}
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"

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
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
                  and (.target.kind | index("test"))
                  and (.target.name | startswith("lab_"))
                  and .executable != null) | .executable' "$json"
)
if ((${#bins[@]} == 0)); then
    echo "build-tests.sh: no lab_* test targets found (expected e.g. drivers/tests/lab_smoke.rs)" >&2
    exit 1
fi
for bin in "${bins[@]}"; do
    if command -v file >/dev/null && file -b "$bin" | grep -q 'dynamically linked'; then
        echo "build-tests.sh: $bin is dynamically linked; the lab guest cannot run it" >&2
        exit 1
    fi
    echo "$bin"
done
