"""health: the pure cluster health report. /readyz from real captures (tests/unit/fixtures/kubectl, each with its
source); Node, Pod, workload, Service, Longhorn and certificate objects are CONSTRUCTED here in the shapes the API
and kubeadm document (``kubectl get ... -o json`` items; kubeadm's output.kubeadm.k8s.io/v1alpha3
CertificateExpirationInfo: name, expirationDate RFC 3339, residualTime seconds, missing), trimmed to the fields
the report reads."""

import datetime
import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import health

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
NOW = datetime.datetime(2026, 12, 7, 12, 0, 0)
EXPECTED = [{"name": "spark-2959", "gpus": 1, "address": "10.10.10.1/24"},
            {"name": "spark-ba63", "gpus": 1, "address": "10.10.10.2/24"}]


def load(tool, name):
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


READYZ_OK = load("kubectl", "readyz-verbose-k8s-1.2x-homelab.txt")
# CONSTRUCTED: what kubectl get --raw prints on stderr (exit 1) when /readyz answers 500: the body inside Go's
# quoted error, lines joined by an escaped newline. The check lines are the real failing capture's.
READYZ_ETCD_FAILED_STDERR = (
    'Error from server (InternalError): an error on the server ("[+]ping ok\\n[+]log ok\\n'
    + "\\n".join(load("kubectl", "readyz-failing-k3s-kine-nonverbose.txt").strip().splitlines())
    + '") has prevented the request from succeeding\n')


def node(name, ready="True", gpus=1, ip=None, unschedulable=False, kubelet="v1.31.14", pressure=None):
    conditions = [{"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else
                   "NodeStatusUnknown", "message": "kubelet is posting ready status" if ready == "True" else
                   "Kubelet stopped posting node status."}]
    if pressure:
        conditions.append({"type": pressure, "status": "True"})
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"unschedulable": unschedulable} if unschedulable else {},
            "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": kubelet},
                       "allocatable": {"cpu": "20", "nvidia.com/gpu": str(gpus)},
                       "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}


def healthy_nodes():
    return [node("spark-2959", ip="10.10.10.1"), node("spark-ba63", ip="10.10.10.2")]


def pod(namespace, name, phase="Running", ready=True, waiting=None):
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        status["containerStatuses"] = [{"name": "main", "ready": False, "state": {"waiting": {"reason": waiting}}}]
    return {"kind": "Pod", "metadata": {"namespace": namespace, "name": name}, "status": status}


def daemonset(namespace, name, ready, desired=2):
    return {"kind": "DaemonSet", "metadata": {"namespace": namespace, "name": name, "generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": desired, "numberReady": ready,
                       "updatedNumberScheduled": desired, "numberAvailable": ready}}


def deployment(namespace, name, ready, replicas=1):
    return {"kind": "Deployment", "metadata": {"namespace": namespace, "name": name, "generation": 1},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": replicas,
                       "availableReplicas": ready}}


def lb_service(namespace, name, ip=None):
    return {"kind": "Service", "metadata": {"namespace": namespace, "name": name},
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]} if ip else {}}}


def cert(name, expires, missing=False):
    if missing:
        return {"name": name, "expirationDate": None, "residualTime": 0, "externallyManaged": False, "missing": True}
    return {"name": name, "expirationDate": expires, "residualTime": 1, "caName": "ca", "externallyManaged": False}


def cert_info(*certs):
    return {"kind": "CertificateExpirationInfo", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
            "certificates": list(certs),
            "certificateAuthorities": [{"name": "ca", "expirationDate": "2035-08-17T09:03:00Z",
                                        "residualTime": 275000000, "externallyManaged": False}]}


METALLB = {"name": "metallb", "enabled": True, "release_name": "metallb", "release_namespace": "metallb-system",
           "namespaces": ["metallb-system"]}


def inputs(**over):
    base = {"readyz": READYZ_OK, "nodes": healthy_nodes(), "expected_nodes": EXPECTED,
            "pods": [pod("kube-system", "etcd-spark-2959"), pod("kube-system", "kube-proxy-abcde")],
            "workloads": [daemonset("kube-system", "kube-proxy", 2),
                          daemonset("metallb-system", "metallb-speaker", 2),
                          deployment("metallb-system", "metallb-controller", 1)],
            "services": [lb_service("apps", "open-webui", "192.168.86.240")],
            "addons": [METALLB],
            "releases": {("metallb-system", "metallb"): {"chart_version": "0.15.2", "status": "deployed"}},
            "certificates": cert_info(cert("apiserver", "2027-08-19T09:03:00Z"))}
    base.update(over)
    return base


def by(report, area, subject=None):
    return [f for f in report["findings"] if f["area"] == area and (subject is None or f["subject"] == subject)]


# --- overall -------------------------------------------------------------------------------------------------------

def test_a_healthy_cluster_is_healthy_and_exits_0():
    report = health.report(inputs(), NOW)
    assert report["status"] == "healthy" and report["exit_code"] == 0
    assert report["failures"] == [] and report["degradations"] == []
    assert by(report, "api") == [{"area": "api", "subject": "/readyz", "severity": "ok", "message": "25 checks ok"}]
    assert [f["severity"] for f in by(report, "etcd")] == ["ok", "ok"]
    assert by(report, "nodes", "spark-ba63")[0]["message"] == "Ready, kubelet v1.31.14, GPUs 1"
    assert by(report, "addons", "metallb")[0]["message"] == \
        "release metallb 0.15.2 deployed, 2 Deployments and DaemonSets"
    assert report["generated"] == "2026-12-07T12:00:00Z"


def test_unknown_findings_never_count_against_the_cluster():
    report = health.report(inputs(certificates=None, certificates_error="kubeadm not found"), NOW)
    assert report["status"] == "healthy"
    assert report["counts"]["unknown"] == 3  # certificates, RoCE, NCCL
    assert by(report, "certificates")[0]["message"] == "not checked: kubeadm not found"


def test_failed_wins_over_degraded():
    nodes = [node("spark-2959", ip="10.10.10.1", gpus=0), node("spark-ba63", ready="Unknown", ip="10.10.10.2")]
    report = health.report(inputs(nodes=nodes), NOW)
    assert report["status"] == "failed" and report["exit_code"] == 2
    assert report["failures"] == ["nodes spark-ba63: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting "
                                  "node status.)"]
    assert report["degradations"] == ["nodes spark-2959: Ready, kubelet v1.31.14, GPUs 0; GPUs allocatable 0 of 1 "
                                      "expected"]


def test_overall_rule():
    assert health.overall([]) == "healthy"
    assert health.overall([health.finding("a", "b", "unknown", "x")]) == "healthy"
    assert health.overall([health.finding("a", "b", "ok", "x"), health.finding("a", "c", "degraded", "x")]) == \
        "degraded"
    with pytest.raises(ValueError):
        health.finding("a", "b", "warning", "x")


# --- API and etcd --------------------------------------------------------------------------------------------------

def test_readyz_of_a_real_healthy_api():
    parsed = health.parse_readyz(READYZ_OK)
    assert parsed["passed"] is True and len(parsed["checks"]) == 27 and all(c["ok"] for c in parsed["checks"])


def test_etcd_failing_in_readyz_fails_the_report_from_kubectls_error_text():
    report = health.report(inputs(readyz=READYZ_ETCD_FAILED_STDERR, readyz_error="x"), NOW)
    assert report["status"] == "failed"
    assert by(report, "etcd") == [
        {"area": "etcd", "subject": "etcd", "severity": "failed", "message": "/readyz check failed: reason withheld"},
        {"area": "etcd", "subject": "etcd-readiness", "severity": "failed",
         "message": "/readyz check failed: reason withheld"}]
    assert by(report, "api")[0]["severity"] == "ok"  # ping and log answered: the fault is etcd's


def test_an_api_that_does_not_answer_fails_and_leaves_etcd_unknown():
    error = "The connection to the server 10.10.10.1:6443 was refused - did you specify the right host or port?"
    report = health.report(inputs(readyz=error, readyz_error=error, nodes=None, objects_error=error), NOW)
    assert report["status"] == "failed"
    assert by(report, "api")[0] == {"area": "api", "subject": "/readyz", "severity": "failed",
                                    "message": "the API did not answer: %s" % error}
    assert by(report, "etcd")[0]["severity"] == "unknown"
    assert by(report, "nodes")[0]["severity"] == "failed"
    assert by(report, "pods")[0]["severity"] == "unknown"


def test_another_failing_readyz_check_fails_the_api():
    text = READYZ_OK.replace("[+]informer-sync ok", "[-]informer-sync failed: reason withheld").replace(
        "readyz check passed", "readyz check failed")
    found = health.judge_api(text)
    assert found[0] == {"area": "api", "subject": "informer-sync", "severity": "failed",
                        "message": "/readyz check failed: reason withheld"}


# --- Nodes ---------------------------------------------------------------------------------------------------------

def test_an_inventory_node_without_a_node_fails():
    found = health.judge_nodes([node("spark-2959", ip="10.10.10.1")], EXPECTED)
    assert found[1] == {"area": "nodes", "subject": "spark-ba63", "severity": "failed", "message": "no Node in the API"}


@pytest.mark.parametrize("kwargs,problem", [
    ({"gpus": 0}, "GPUs allocatable 0 of 1 expected"),
    ({"unschedulable": True}, "cordoned"),
    ({"pressure": "DiskPressure"}, "DiskPressure"),
    ({"ip": "192.168.86.39"}, "InternalIP 192.168.86.39, not its fabric address 10.10.10.2"),
])
def test_node_faults_that_degrade(kwargs, problem):
    params = dict({"ip": "10.10.10.2"}, **kwargs)
    found = health.judge_nodes([node("spark-2959", ip="10.10.10.1"), node("spark-ba63", **params)], EXPECTED)
    assert found[1]["severity"] == "degraded" and found[1]["message"].endswith("; " + problem)
    assert found[0]["severity"] == "ok"


def test_a_node_the_inventory_does_not_know_and_differing_kubelets_degrade():
    nodes = healthy_nodes() + [node("spark-0000", ip="10.10.10.3", kubelet="v1.30.2")]
    found = health.judge_nodes(nodes, EXPECTED)
    assert found[2] == {"area": "nodes", "subject": "spark-0000", "severity": "degraded",
                        "message": "Ready, kubelet v1.30.2, GPUs 1; not in the inventory"}
    assert found[3]["subject"] == "kubelet versions" and found[3]["severity"] == "degraded"


# --- Pods, workloads, add-ons --------------------------------------------------------------------------------------

def test_pods_not_running_or_not_ready_degrade_their_namespace_completed_ones_do_not():
    pods = [pod("apps", "ollama-0", phase="Pending", ready=False, waiting="ImagePullBackOff"),
            pod("apps", "comfyui-1", ready=False, waiting="CrashLoopBackOff"),
            pod("apps", "open-webui-2"),
            pod("apps", "migrate-job-x", phase="Succeeded", ready=False),
            pod("kube-system", "etcd-spark-2959")]
    found = health.judge_pods(pods)
    assert found == [
        {"area": "pods", "subject": "apps", "severity": "degraded",
         "message": "2 of 4 pods not Running and Ready: comfyui-1: not Ready (CrashLoopBackOff); "
                    "ollama-0: Pending (ImagePullBackOff)"},
        {"area": "pods", "subject": "kube-system", "severity": "ok",
         "message": "1 pods Running and Ready (or completed)"}]


def test_a_workload_outside_the_addons_is_judged_in_its_namespace():
    report = health.report(inputs(workloads=[daemonset("kube-system", "kube-proxy", 1)]), NOW)
    assert by(report, "workloads") == [{"area": "workloads", "subject": "kube-system", "severity": "degraded",
                                        "message": "DaemonSet kube-system/kube-proxy: 1/2 pods ready"}]


@pytest.mark.parametrize("releases,workloads,message", [
    ({}, [daemonset("metallb-system", "metallb-speaker", 2)], "Helm release metallb-system/metallb not installed"),
    ({("metallb-system", "metallb"): {"chart_version": "0.15.2", "status": "failed"}}, [],
     "Helm release metallb is failed"),
    ({("metallb-system", "metallb"): {"chart_version": "0.15.2", "status": "deployed"}},
     [daemonset("metallb-system", "metallb-speaker", 1)], "DaemonSet metallb-system/metallb-speaker: 1/2 pods ready"),
    (None, [], "Helm release metallb-system/metallb not read"),
])
def test_an_enabled_addon_that_is_not_ready_degrades(releases, workloads, message):
    found = health.judge_addons([METALLB], releases, workloads)
    assert found == [{"area": "addons", "subject": "metallb", "severity": "degraded", "message": message}]


def test_a_disabled_addon_is_not_checked():
    found = health.judge_addons([dict(METALLB, enabled=False)], {}, [])
    assert found == [{"area": "addons", "subject": "metallb", "severity": "unknown",
                      "message": "not checked: turned off in the inventory"}]


# --- Services, Longhorn --------------------------------------------------------------------------------------------

def test_a_loadbalancer_without_an_address_degrades_other_services_are_ignored():
    services = [lb_service("apps", "open-webui", "192.168.86.240"), lb_service("apps", "vllm"),
                {"kind": "Service", "metadata": {"namespace": "default", "name": "kubernetes"},
                 "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}}]
    assert health.judge_services(services) == [
        {"area": "services", "subject": "apps/open-webui", "severity": "ok", "message": "LoadBalancer 192.168.86.240"},
        {"area": "services", "subject": "apps/vllm", "severity": "degraded",
         "message": "LoadBalancer without an address (pending)"}]


def test_longhorn_nodes_and_volumes():
    nodes = [{"metadata": {"name": "spark-2959"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Schedulable", "status": "True"}]}},
        {"metadata": {"name": "spark-ba63"}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "message": "Node spark-ba63 is down"},
            {"type": "Schedulable", "status": "True"}]}}]
    volumes = [{"metadata": {"name": "pvc-1"}, "status": {"state": "attached", "robustness": "degraded"}},
               {"metadata": {"name": "pvc-2"}, "status": {"state": "detached", "robustness": "unknown"}}]
    found = health.judge_longhorn(nodes, volumes)
    assert [(f["subject"], f["severity"]) for f in found] == [
        ("node spark-2959", "ok"), ("node spark-ba63", "degraded"), ("volume pvc-1", "degraded"),
        ("volume pvc-2", "ok")]
    assert found[1]["message"] == "not Ready: Node spark-ba63 is down"
    assert health.judge_longhorn(None, None, expected=False) == []
    assert health.judge_longhorn(None, None)[0]["severity"] == "unknown"


# --- Certificates --------------------------------------------------------------------------------------------------

def test_certificates_expired_fail_expiring_soon_degrade_the_rest_are_one_ok_line():
    info = cert_info(cert("apiserver", "2026-12-01T09:03:00Z"), cert("admin.conf", "2026-12-20T09:03:00Z"),
                     cert("etcd-server", "2027-08-19T09:03:00Z"), cert("super-admin.conf", None, missing=True))
    found = health.judge_certificates(info, NOW, 30)
    assert found == [
        {"area": "certificates", "subject": "certificate apiserver", "severity": "failed",
         "message": "expired on 2026-12-01"},
        {"area": "certificates", "subject": "certificate admin.conf", "severity": "degraded",
         "message": "expires on 2026-12-20, in 12 days (warning below 30)"},
        {"area": "certificates", "subject": "certificate super-admin.conf", "severity": "degraded",
         "message": "missing"},
        {"area": "certificates", "subject": "kubeadm", "severity": "ok",
         "message": "2 valid; the first to expire: certificate etcd-server on 2027-08-19, in 254 days"}]


def test_the_warning_days_are_a_parameter():
    info = cert_info(cert("admin.conf", "2026-12-20T09:03:00Z"))
    assert health.report(inputs(certificates=info), NOW, warning_days=30)["status"] == "degraded"
    assert health.report(inputs(certificates=info), NOW, warning_days=7)["status"] == "healthy"


def test_parse_time():
    assert health.parse_time("2027-08-19T09:03:00Z") == datetime.datetime(2027, 8, 19, 9, 3)
    assert health.parse_time("2027-08-19T09:03:00.123Z") == datetime.datetime(2027, 8, 19, 9, 3)
    assert health.parse_time("Aug 19, 2026 09:03 UTC") is None


# --- Fabric and NCCL: recorded verdicts only -----------------------------------------------------------------------

def test_absent_verdicts_are_not_checked_never_invented():
    report = health.report(inputs(), NOW)
    assert by(report, "fabric") == [{"area": "fabric", "subject": "RoCE", "severity": "unknown",
                                     "message": "no verdict recorded (run playbooks/validate-fabric.yml)"}]
    assert by(report, "nccl")[0]["severity"] == "unknown"
    assert by(report, "nccl")[0]["message"].startswith("no verdict recorded")


def test_a_recorded_nccl_verdict():
    passed = {"passed": True, "avg_busbw_gbs": 21.4, "started": "20261130T101500Z"}
    assert health.judge_nccl(passed)[0] == {"area": "nccl", "subject": "nccl-tests", "severity": "ok",
                                            "message": "last verdict PASSED, avg busbw 21.40 GB/s (20261130T101500Z)"}
    failed = {"passed": False, "avg_busbw_gbs": 3.1, "failures": ["avg busbw 3.10 GB/s below 20.00"]}
    found = health.judge_nccl(failed, "/home/u/dgx-spark-results/20261130T101500Z-all_reduce_perf.json")[0]
    assert found["severity"] == "degraded"
    assert found["message"] == ("last verdict FAILED, avg busbw 3.10 GB/s (/home/u/dgx-spark-results/"
                                "20261130T101500Z-all_reduce_perf.json): avg busbw 3.10 GB/s below 20.00")


def test_a_recorded_roce_verdict():
    assert health.judge_roce({"failures": [], "devices": [{"name": "rocep1s0f1"}]})[0]["severity"] == "ok"
    found = health.judge_roce({"failures": ["rocep1s0f1: MTU 1500 below 9000"], "devices": []})[0]
    assert found == {"area": "fabric", "subject": "RoCE", "severity": "degraded",
                     "message": "last verdict failed: rocep1s0f1: MTU 1500 below 9000"}


# --- The table -----------------------------------------------------------------------------------------------------

def test_the_table_one_line_per_problem_and_one_per_area_for_what_is_ok():
    nodes = [node("spark-2959", ip="10.10.10.1"), node("spark-ba63", ip="10.10.10.2", gpus=0)]
    report = health.report(inputs(nodes=nodes, services=[lb_service("apps", "vllm")]), NOW)
    lines = report["text"].splitlines()
    assert lines[0] == ("cluster health: DEGRADED  (0 failed, 2 degraded, 2 not checked, 8 ok)  "
                        "2026-12-07T12:00:00Z")
    assert lines[1].split() == ["AREA", "SUBJECT", "STATUS", "DETAIL"]
    assert "nodes        spark-ba63                   DEGRADED    Ready, kubelet v1.31.14, GPUs 0; GPUs " \
           "allocatable 0 of 1 expected" in lines
    assert "nodes        spark-2959                   ok          Ready, kubelet v1.31.14, GPUs 1" in lines
    assert "etcd         2 ok                         ok          etcd, etcd-readiness" in lines
    assert "services     apps/vllm                    DEGRADED    LoadBalancer without an address (pending)" in lines
    assert "nccl         nccl-tests                   not checked no verdict recorded (run " \
           "playbooks/validate-fabric.yml)" in lines
    # Fixed columns: the status always starts at the same place.
    assert len(set(line.index(line.split()[2], 41) for line in lines[2:] if len(line.split()) > 2)) == 1
    # Areas in a fixed order, problems first within an area.
    areas = [line.split()[0] for line in lines[2:]]
    assert areas.index("api") < areas.index("etcd") < areas.index("nodes") < areas.index("certificates")
    assert lines.index([l for l in lines if "spark-ba63" in l][0]) < lines.index(
        [l for l in lines if "spark-2959" in l][0])


def test_a_long_subject_is_cut_to_its_column():
    line = health.table([health.finding("pods", "a-very-long-namespace-name-for-apps-x", "ok", "1 pods")], "healthy")
    assert "a-very-long-namespace-nam... ok" in line


# --- Each node's own judges (check-cluster.yml's node play): results in the shapes of our modules' RETURN ---------

HEALTHY_CHECK = {
    "name": "spark-ba63", "unreachable": False,
    "membership": {"action": "none", "reasons": ["Node spark-ba63 is Ready; kubelet.conf matches; kubelet active "
                                                 "and enabled"], "changed": False},
    "fabric": {"actions": [], "changed": False,
               "ports": [{"name": "enp1s0f1np1", "address": "10.10.10.2/24", "mtu": 9000, "carrier": True}]},
    "cni": {"removed": {"netns": [], "paths": [], "links": []}, "kept": [], "restarted": [], "changed": False},
    "roce": None,
}


def node_check(**changes):
    check = dict(HEALTHY_CHECK)
    check.update(changes)
    return check


def by_subject(findings):
    return {f["subject"]: (f["area"], f["severity"], f["message"]) for f in findings}


def test_a_healthy_node_gives_ok_membership_fabric_and_cni_rows():
    found = by_subject(health.judge_node_checks([HEALTHY_CHECK]))
    assert found["spark-ba63 membership"][:2] == ("nodes", "ok")
    assert found["spark-ba63 addresses"] == ("fabric", "ok", "enp1s0f1np1 10.10.10.2/24 MTU 9000")
    assert found["spark-ba63 CNI state"][:2] == ("pods", "ok")
    assert "spark-ba63 RoCE" not in found  # roce_check did not run: no row, and the global one stays


@pytest.mark.parametrize("action", ["restart_kubelet", "join", "reset_and_join"])
def test_a_pending_membership_repair_fails_the_node_naming_the_repair_and_why(action):
    check = node_check(membership={"action": action, "reasons": ["kubelet inactive"], "changed": False})
    found = by_subject(health.judge_node_checks([check]))
    area, severity, message = found["spark-ba63 membership"]
    assert (area, severity) == ("nodes", "failed")
    assert message == "start-cluster.yml would %s: kubelet inactive" % action.replace("_", " ")
    assert health.overall(health.judge_node_checks([check])) == "failed"


def test_a_membership_judge_that_failed_is_failed_with_its_message():
    # failed_when: false keeps the play going and sets failed to false: the module's msg without an action says it.
    check = node_check(membership={"failed": False, "msg": "refusing to init over an existing cluster"})
    assert by_subject(health.judge_node_checks([check]))["spark-ba63 membership"] == (
        "nodes", "failed", "the membership check failed: refusing to init over an existing cluster")


def test_a_missing_fabric_address_fails_and_a_wrong_mtu_only_degrades():
    check = node_check(fabric={"changed": False, "ports": [], "actions": [
        "set MTU 9000 (was 1500) on enp1s0f1np1", "add 10.10.10.2/24 to enp1s0f1np1"]})
    found = [f for f in health.judge_node_checks([check]) if f["area"] == "fabric"]
    assert [(f["severity"], f["message"]) for f in found] == [
        ("degraded", "start-cluster.yml would set MTU 9000 (was 1500) on enp1s0f1np1"),
        ("failed", "start-cluster.yml would add 10.10.10.2/24 to enp1s0f1np1")]


def test_a_fabric_check_that_could_not_run_is_failed_with_its_message():
    check = node_check(fabric={"failed": False, "msg": "port 1: no candidate has carrier"})
    assert by_subject(health.judge_node_checks([check]))["spark-ba63 addresses"] == (
        "fabric", "failed", "port 1: no candidate has carrier")


def test_stale_cni_state_degrades_naming_each_entry():
    check = node_check(cni={"removed": {"netns": ["/run/netns/cni-0badc0de"], "paths": [], "links": []},
                            "changed": False})
    area, severity, message = by_subject(health.judge_node_checks([check]))["spark-ba63 CNI state"]
    assert (area, severity) == ("pods", "degraded")
    assert message == "1 stale entry (new pods may fail to start): /run/netns/cni-0badc0de"
    assert health.overall(health.judge_node_checks([check])) == "degraded"


def test_an_unreachable_node_is_one_failed_row_and_nothing_else_about_it():
    check = {"name": "spark-ba63", "unreachable": True, "unreachable_msg": "ssh: connect to host 192.168.86.39 "
             "port 22: No route to host", "membership": None, "fabric": None, "cni": None, "roce": None}
    assert health.judge_node_checks([check]) == [health.finding(
        "nodes", "spark-ba63", "failed", "unreachable over SSH: ssh: connect to host 192.168.86.39 port 22: "
        "No route to host")]


def test_judges_that_did_not_run_are_not_checked_never_ok():
    found = by_subject(health.judge_node_checks([node_check(membership=None, fabric=None, cni=None)]))
    assert {subject: severity for subject, (unused, severity, unused2) in found.items()} == {
        "spark-ba63 membership": "unknown", "spark-ba63 addresses": "unknown", "spark-ba63 CNI state": "unknown"}


def test_roce_now_on_each_node_replaces_the_recorded_verdict_row():
    check = node_check(roce={"failed": False, "failures": ["rocep1s0f1 port 1: netdev MTU 1500 below min_mtu 9000"],
                             "devices": [{"name": "rocep1s0f1"}]})
    result = health.report({"node_checks": [check]}, NOW)
    rows = [(f["subject"], f["severity"], f["message"]) for f in result["findings"] if f["area"] == "fabric"]
    assert ("spark-ba63 RoCE", "degraded", "now failed: rocep1s0f1 port 1: netdev MTU 1500 below min_mtu 9000") in rows
    assert not any(subject == "RoCE" for subject, unused, unused2 in rows)
    # Without a node's roce result the recorded verdict row is still there (not checked: none recorded).
    assert any(f["subject"] == "RoCE" for f in health.report({"node_checks": [HEALTHY_CHECK]}, NOW)["findings"])


# --- The report first, the nodes' judges added after (check-cluster.yml reads the cluster once) --------------------

def _same_report(one, other):
    return (one["status"], one["exit_code"], one["counts"], sorted(one["failures"]), sorted(one["degradations"]),
            sorted(one["text"].splitlines())) == (
        other["status"], other["exit_code"], other["counts"], sorted(other["failures"]), sorted(other["degradations"]),
        sorted(other["text"].splitlines()))


@pytest.mark.parametrize("checks", [
    [HEALTHY_CHECK],
    [node_check(cni={"removed": {"netns": ["cni-1234"], "paths": [], "links": []}})],
    [node_check(name="spark-2959"), node_check(unreachable=True, unreachable_msg="ssh: connect timed out")],
    [node_check(roce={"failed": False, "failures": ["rocep1s0f1 port 1: down"], "devices": []})],
    [],
])
def test_judges_added_later_give_the_report_made_with_them(checks):
    whole = health.report(inputs(node_checks=checks), NOW)
    later = health.with_node_checks(health.report(inputs(), NOW), checks)
    assert _same_report(whole, later)
    assert sorted(map(repr, whole["findings"])) == sorted(map(repr, later["findings"]))


def test_a_node_judge_can_turn_a_healthy_report_failed():
    report = health.report(inputs(), NOW)
    assert report["status"] == "healthy"
    check = node_check(membership={"action": "reset_and_join", "reasons": ["kubelet.conf is missing"]})
    result = health.with_node_checks(report, [check])
    assert (result["status"], result["exit_code"]) == ("failed", 2)
    assert result["generated"] == report["generated"]
    assert "spark-ba63 membership" in result["text"] and result["text"].splitlines()[0].startswith(
        "cluster health: FAILED")


def test_node_view_drops_the_bulk_and_keeps_what_the_judges_read():
    full = node("spark-ba63")
    full["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    full["status"]["images"] = [{"names": ["busybox"]}]
    view = health.node_view(full)
    assert "managedFields" not in view["metadata"] and "images" not in view["status"]
    assert view["metadata"]["name"] == "spark-ba63"
    assert view["status"]["conditions"] == full["status"]["conditions"]
    assert "images" in full["status"]  # the input is not changed
