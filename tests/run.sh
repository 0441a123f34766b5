#!/usr/bin/env bash
# All the tests, in tiers, from one command (the README's test command; CI runs exactly this):
#   setup    apt packages, the pinned venv, ansible-test's offline bootstrap (tests/setup.sh)
#   lint     ansible-lint, production profile, empty skip list
#   sanity   ansible-test sanity, no ignore file
#   unit     pytest: parsers and planners on real captured output, modules, filters, playbook-level checks
#   lab      the lab's real Kubernetes (built once from the Go module proxy, cached in /var/cache/dgxlab);
#            Molecule scenarios on the two-node podman lab, each from fresh nodes; then the repair tests
#            (tests/lab: injected faults, each repaired and followed by a quiet run; Nodes not Ready while
#            their kubelet runs; the add-ons: MetalLB answering on the LAN, the webhook race, upgrades,
#            bad inputs; sleep → magic packet → wake; etcd backup, restore and rotation) and the no-op speed
#            benchmark (tests/bench.py), with their measured times
#   kernel   two QEMU VMs with soft-RoCE: roce_check for real (skip with --no-kernel or DGX_TEST_KERNEL=0)
# Usage: tests/run.sh [--no-kernel] [tier ...]     (no tier: all of setup lint sanity unit lab kernel)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export PATH=$REPO/.venv/bin:$PATH
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1
# This checkout, never a copy installed elsewhere (e.g. ~/.ansible/collections), is what every tier tests.
export ANSIBLE_COLLECTIONS_PATH=$REPO/collections

kernel=${DGX_TEST_KERNEL:-1}
tiers=()
for arg in "$@"; do
    case "$arg" in
        --kernel) kernel=1 ;;
        --no-kernel) kernel=0 ;;
        setup|lint|sanity|unit|lab|kernel) tiers+=("$arg") ;;
        *) echo "unknown tier: $arg" >&2; exit 2 ;;
    esac
done
if [ ${#tiers[@]} -eq 0 ]; then
    tiers=(setup lint sanity unit lab)
    [ "$kernel" = 1 ] && tiers+=(kernel)
fi

declare -A took
failed=()
run_tier() {
    local name=$1 start rc
    shift
    printf '\n===== tier %s =====\n' "$name"
    start=$(date +%s)
    set +e
    "$@"
    rc=$?
    set -e
    took[$name]=$(( $(date +%s) - start ))
    if [ $rc -ne 0 ]; then failed+=("$name"); printf '===== tier %s FAILED (rc %d) =====\n' "$name" "$rc"; fi
    return 0
}

tier_lab() {
    local scenario
    # The real Kubernetes the lab nodes install and import (about 12 minutes cold, on 2 cores; cached after that).
    lab/build-node-artifacts.sh >/dev/null || return 1
    lab/build-addons.sh >/dev/null || return 1
    # helm on the controller (kubernetes.core.helm runs it there): the one built with the lab's Kubernetes.
    PATH=$PATH:$(lab/build-kubernetes.sh --bin-dir)
    export PATH
    lab/lab.sh image
    for scenario_dir in molecule/*/; do
        scenario=$(basename "$scenario_dir")
        [ -f "molecule/$scenario/molecule.yml" ] || continue
        printf -- '--- scenario %s (fresh lab) ---\n' "$scenario"
        lab/lab.sh down >/dev/null 2>&1 || true
        lab/lab.sh up || return 1
        molecule reset -s "$scenario" >/dev/null 2>&1 || true  # forget state (prepared, converged) of earlier runs
        molecule test -s "$scenario" || return 1
    done
    printf -- '--- repairs: injected faults, Nodes not Ready, stop/start, guarded reset, concurrent runs (fresh lab) ---\n'
    lab/lab.sh down >/dev/null 2>&1 || true
    lab/lab.sh up || return 1
    # Order matters: test_repairs.py builds the cluster from empty nodes (conftest runs it first); the others need it.
    pytest -v -p no:cacheprovider tests/lab/test_repairs.py tests/lab/test_addons.py tests/lab/test_not_ready.py \
        tests/lab/test_concurrent_runs.py tests/lab/test_health.py tests/lab/test_power.py tests/lab/test_etcd_backup.py tests/lab/test_dashboard.py \
        tests/lab/test_apps.py \
        || return 1
    python3 - "$REPO/.lab/repair-times.json" <<'PY'
import json, sys
times = json.load(open(sys.argv[1]))
print("\n| what (start-cluster.yml unless named) | wall time |\n|---|---|")
for name, seconds in times.items():
    print("| %s | %.1f s |" % (name, seconds))
PY
    python3 tests/bench.py --runs 5 || return 1
    lab/lab.sh down
}

for tier in "${tiers[@]}"; do
    case "$tier" in
        setup) run_tier setup tests/setup.sh ;;
        lint) run_tier lint ansible-lint --nocolor ;;
        sanity) run_tier sanity tests/sanity.sh ;;
        unit) run_tier unit pytest -q -p no:cacheprovider tests/unit tests/playbooks ;;
        lab) run_tier lab tier_lab ;;
        kernel) run_tier kernel tests/kernel/run.sh ;;
    esac
    # Nothing after a failed setup can run.
    [ "$tier" = setup ] && [ ${#failed[@]} -gt 0 ] && break
done

printf '\n===== summary =====\n'
for tier in "${tiers[@]}"; do
    [ -n "${took[$tier]:-}" ] || continue
    status=passed
    [[ " ${failed[*]} " == *" $tier "* ]] && status=FAILED
    printf '%-8s %-7s %5d s\n' "$tier" "$status" "${took[$tier]}"
done
[ ${#failed[@]} -eq 0 ] || { echo "failed tiers: ${failed[*]}"; exit 1; }
