# -*- coding: utf-8 -*-
# Tests of the TEST STAND-IN API server (tests/standin/apiserver.py), which is NOT Kubernetes: real ansible-playbook
# runs of the bundled kubernetes.core modules (k8s_info, k8s present/absent/patched + check mode, k8s_drain with a
# blocking PodDisruptionBudget, cordon/uncordon) against it through a kubeconfig, on 127.0.0.1 only.
"""kubernetes.core modules against the API stand-in (results read through the ansible.posix.json callback)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from standin_testlib import C, REPO

kubernetes = pytest.importorskip("kubernetes")

PLAYBOOK = r"""
- name: kubernetes.core against the API stand-in
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Nodes by field selector
      kubernetes.core.k8s_info:
        kind: Node
        field_selectors: ["metadata.name=ans-node"]
      register: nodes

    - name: ConfigMap present
      kubernetes.core.k8s:
        state: present
        definition:
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: cfg, namespace: ans, labels: {app: demo}}
          data: {k: v}
      register: cm1

    - name: ConfigMap present again (idempotent)
      kubernetes.core.k8s:
        state: present
        definition:
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: cfg, namespace: ans, labels: {app: demo}}
          data: {k: v}
      register: cm2

    - name: ConfigMap change in check mode (server-side dry run)
      kubernetes.core.k8s:
        state: present
        definition:
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: cfg, namespace: ans}
          data: {k: changed}
      check_mode: true
      register: cm_check

    - name: Label the worker Node (state patched)
      kubernetes.core.k8s:
        state: patched
        kind: Node
        name: ans-node
        definition:
          metadata:
            labels: {nvidia.com/gpu.present: "true"}
      register: label1

    - name: Drain while a PodDisruptionBudget blocks
      kubernetes.core.k8s_drain:
        name: ans-node
        delete_options: {force: true, ignore_daemonsets: true}
      register: drain_blocked
      ignore_errors: true

    - name: Remove the PodDisruptionBudget
      kubernetes.core.k8s:
        state: absent
        api_version: policy/v1
        kind: PodDisruptionBudget
        namespace: ans
        name: app-pdb
      register: pdb_gone

    - name: Drain
      kubernetes.core.k8s_drain:
        name: ans-node
        delete_options: {force: true, ignore_daemonsets: true, wait_timeout: 10, wait_sleep: 1}
      register: drained

    - name: Uncordon
      kubernetes.core.k8s_drain:
        name: ans-node
        state: uncordon
      register: uncordon

    - name: Namespace absent (waits until the namespace is finalized)
      kubernetes.core.k8s:
        state: absent
        kind: Namespace
        name: ans-tmp
        wait: true
        wait_sleep: 1
        wait_timeout: 20
      register: ns_gone
"""


def _ansible_playbook():
    cand = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return cand if os.path.exists(cand) else shutil.which("ansible-playbook")


@pytest.mark.skipif(_ansible_playbook() is None, reason="ansible-playbook not installed")
def test_kubernetes_core_modules_against_standin(dyn, admin_kubeconfig, tmp_path):
    nodes = dyn.resources.get(api_version="v1", kind="Node")
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    now = C.rfc3339()
    nodes.create(body={"metadata": {"name": "ans-node"}})
    nodes.status.patch(name="ans-node", body={"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now}]}})
    for ns in ("ans", "ans-tmp"):
        dyn.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": ns}})
    dyn.resources.get(api_version="v1", kind="ConfigMap").create(namespace="ans-tmp", body={"metadata": {"name": "x"}})
    for name in ("app-1", "other"):
        pods.create(namespace="ans", body={"metadata": {"name": name, "labels": {"app": name.split("-", maxsplit=1)[0]}},
                                           "spec": {"nodeName": "ans-node", "terminationGracePeriodSeconds": 0,
                                                    "containers": [{"name": "c", "image": "i:1"}]}})
        pods.status.patch(namespace="ans", name=name, content_type="application/merge-patch+json",
                          body={"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    dyn.resources.get(api_version="policy/v1", kind="PodDisruptionBudget").create(namespace="ans", body={
        "metadata": {"name": "app-pdb"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "app"}}}})
    # keep the Node's heartbeat fresh while the playbook runs (the module apiserver's grace period is 2 s)
    import threading
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(0.5):
            t = C.rfc3339()
            try:
                nodes.status.patch(name="ans-node", body={"status": {"conditions": [
                    {"type": "Ready", "status": "True", "lastHeartbeatTime": t}]}})
            except Exception:  # noqa: BLE001 - best effort
                pass

    hb = threading.Thread(target=heartbeat, daemon=True)
    hb.start()
    pb = tmp_path / "pb.yml"
    pb.write_text(PLAYBOOK)
    env = dict(os.environ)
    env.update({"K8S_AUTH_KUBECONFIG": admin_kubeconfig, "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_PIPELINING": "True"})
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    try:
        proc = subprocess.run([_ansible_playbook(), "-i", "localhost,", "-c", "local", str(pb),
                               "-e", "ansible_python_interpreter=%s" % sys.executable],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    finally:
        stop.set()
        hb.join(5)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    r = {t["task"]["name"]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]}
    assert [n["metadata"]["name"] for n in r["Nodes by field selector"]["resources"]] == ["ans-node"]
    assert r["ConfigMap present"]["changed"] is True
    assert r["ConfigMap present again (idempotent)"]["changed"] is False
    assert r["ConfigMap change in check mode (server-side dry run)"]["changed"] is True
    cm = dyn.resources.get(api_version="v1", kind="ConfigMap").get(namespace="ans", name="cfg")
    assert cm.data.k == "v"  # the server-side dry run changed nothing
    assert r["Label the worker Node (state patched)"]["changed"] is True
    assert nodes.get(name="ans-node").metadata.labels["nvidia.com/gpu.present"] == "true"
    blocked = r["Drain while a PodDisruptionBudget blocks"]
    assert blocked["failed"] is True
    assert "Cannot evict pod as it would violate the pod's disruption budget." in blocked["msg"]
    assert r["Remove the PodDisruptionBudget"]["changed"] is True
    drained = r["Drain"]
    assert drained["changed"] is True and "Pod(s) deleted from node" in drained["result"]
    assert r["Uncordon"]["changed"] is True and not nodes.get(name="ans-node").spec.unschedulable
    assert r["Namespace absent (waits until the namespace is finalized)"]["changed"] is True
    assert "ans-tmp" not in [n.metadata.name for n in dyn.resources.get(api_version="v1", kind="Namespace").get().items]
    assert [p.metadata.name for p in pods.get(field_selector="spec.nodeName=ans-node").items] == []
