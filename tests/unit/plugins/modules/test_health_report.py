"""health_report module: main() with a patched AnsibleModule, writing into a temporary directory. The report it
writes is the core's report finished with the nodes' judges; the file is 0600 in a 0700 directory it makes."""

import datetime
import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.module_utils import health
from ansible_collections.dgx_spark.cluster.plugins.modules import health_report
from module_harness import ExitJson, FailJson, patch_exits  # noqa: E402  (sibling helper)

NOW = datetime.datetime(2026, 12, 7, 12, 0, 0)
STALE = {"name": "spark-ba63", "unreachable": False,
         "membership": {"action": "none", "reasons": ["Node spark-ba63 is Ready"]},
         "fabric": {"actions": [], "ports": []},
         "cni": {"removed": {"netns": ["cni-1234"], "paths": [], "links": []}}}


def run(monkeypatch, args):
    warnings = []
    patch_exits(monkeypatch, warnings)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as raised:
            health_report.main()
    return raised.value.args[0], warnings


def test_writes_the_finished_report_0600_in_a_new_0700_directory_and_warns_when_degraded(monkeypatch, tmp_path):
    report = health.report({"readyz": "[+]ping ok\nreadyz check passed\n", "nodes": [], "pods": [], "workloads": [],
                            "services": []}, NOW)
    path = tmp_path / "results" / "cluster-health.json"
    result, warnings = run(monkeypatch, {"report": report, "node_checks": [STALE], "path": str(path)})
    assert result["changed"] is False and result["status"] == "degraded"
    written = json.loads(path.read_text())
    assert written == result["report"]
    assert any(f["subject"] == "spark-ba63 CNI state" and f["severity"] == "degraded" for f in written["findings"])
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(path.parent)).st_mode) == 0o700
    assert warnings == ["cluster health is DEGRADED: %s" % "; ".join(result["degradations"])]
    assert os.listdir(str(path.parent)) == ["cluster-health.json"]  # no temporary file left


def test_an_existing_report_is_replaced(monkeypatch, tmp_path):
    path = tmp_path / "cluster-health.json"
    path.write_text("old")
    os.chmod(str(path), 0o644)
    report = health.report({"readyz": "[+]ping ok\nreadyz check passed\n"}, NOW)
    result, unused = run(monkeypatch, {"report": report, "path": str(path)})
    assert json.loads(path.read_text())["generated"] == report["generated"]
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600


def test_input_that_is_not_a_report_fails_and_writes_nothing(monkeypatch, tmp_path):
    path = tmp_path / "cluster-health.json"
    result, unused = run(monkeypatch, {"report": {"status": "healthy"}, "path": str(path)})
    assert result["failed"] and "not a cluster_health report" in result["msg"]
    assert not path.exists()
