#!/usr/bin/env bash
# Run playbooks/check-cluster.yml and exit by the cluster's health, for cron and other schedulers:
#   0 healthy, 1 degraded, 2 failed, 3 no report (the playbook could not make one: unreachable control plane,
#   bad inventory, ...). Arguments go to ansible-playbook, which runs from the repository root (its ansible.cfg), so
#   relative paths are relative to the root: for example -i inventory/lab/hosts.yml, --check.
# The JSON report lands in $DGX_SPARK_HEALTH_REPORT (default: $DGX_SPARK_RESULTS_DIR, else ~/dgx-spark-results,
# /cluster-health.json); do not also pass -e health_report_path.
set -u
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
report=${DGX_SPARK_HEALTH_REPORT:-${DGX_SPARK_RESULTS_DIR:-$HOME/dgx-spark-results}/cluster-health.json}
export DGX_SPARK_HEALTH_REPORT=$report
playbook=${ANSIBLE_PLAYBOOK:-ansible-playbook}

# The report's modification time before the run: a report this run did not write is not its answer.
before=$(stat -c %y "$report" 2>/dev/null || true)

(cd "$repo" && "$playbook" playbooks/check-cluster.yml "$@")
rc=$?

after=$(stat -c %y "$report" 2>/dev/null || true)
if [ -z "$after" ] || [ "$after" = "$before" ]; then
    printf 'check-cluster: no report was made (ansible-playbook exited %d)\n' "$rc" >&2
    exit 3
fi
status=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$report" 2>/dev/null)
case "$status" in
    healthy) exit 0 ;;
    degraded) exit 1 ;;
    failed) exit 2 ;;
    *) printf 'check-cluster: unreadable report %s\n' "$report" >&2; exit 3 ;;
esac
