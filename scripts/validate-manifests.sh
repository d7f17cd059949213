#!/usr/bin/env bash
# Validates the k8s/ manifests offline (issue 16, item 5): the built-in
# kinds against the Kubernetes JSON schemas that PyPI's kubernetes-validate
# bundles (strict: unknown fields fail), the NetworkAttachmentDefinitions
# and the device plugin's config.json against schemas of our own
# (k8s/schemas/), and the rules no schema can express (Guaranteed QoS,
# integer CPUs, exactly IPC_LOCK + NET_ADMIN, never privileged, resource
# names that agree). Then the self-test: a copy of the manifests broken in
# one way per case, in a temporary directory, must fail on the expected
# check (scripts/validate_manifests.py has the cases).
#
# Usage: scripts/validate-manifests.sh [DIR]   (DIR: k8s)
# Env: MANIFEST_VENV (target/validate-manifests-venv): the venv, made once
#      from scripts/validate-manifests.requirements.txt (pinned versions;
#      needs PyPI the first time, nothing after).
# Closes with `validate-manifests: tests: N passed, M failed, 0 skipped`
# (.ci/run adds it to the CI tally); exit status 0 when nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-k8s}
venv=${MANIFEST_VENV:-target/validate-manifests-venv}
req=scripts/validate-manifests.requirements.txt
say() { echo "validate-manifests: $*"; }
fail_setup() {
    say "FAIL set-up: $*"
    say "tests: 0 passed, 1 failed, 0 skipped"
    exit 1
}
t0=$SECONDS

# The venv is (re)made when missing or when its pins differ from the file's.
stamp=$venv/.requirements
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
    start=$SECONDS
    rm -rf "$venv"
    timeout 120 python3 -m venv "$venv" ||
        fail_setup "python3 -m venv $venv failed (on Debian's own python3: apt-get install python3-venv)"
    timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" ||
        fail_setup "pip install -r $req failed (PyPI unreachable?)"
    cp "$req" "$stamp"
    say "venv $venv made in $((SECONDS - start)) s"
fi

log=$(mktemp /tmp/fastpath-manifests.XXXXXX)
trap 'rm -f "$log"' EXIT
rc=0
timeout 300 "$venv/bin/python" scripts/validate_manifests.py "$dir" 2>&1 | tee "$log" || rc=$?
self_rc=0
timeout 300 "$venv/bin/python" scripts/validate_manifests.py --self-test "$dir" 2>&1 | tee -a "$log" || self_rc=$?

passed=$(grep -c '^validate-manifests: PASS ' "$log" || true)
failed=$(grep -c '^validate-manifests: FAIL ' "$log" || true)
# A run that died without a FAIL line (a Python error, a timeout) still
# counts as one failure.
for r in "$rc" "$self_rc"; do
    if ((r != 0 && failed == 0)); then
        say "the validator exited with status $r without naming a failed check"
        failed=1
    fi
done
say "done in $((SECONDS - t0)) s"
say "tests: $passed passed, $failed failed, 0 skipped"
((failed == 0 && rc == 0 && self_rc == 0))
