# -*- coding: utf-8 -*-
# Tests of the TEST STAND-IN API server (tests/standin/apiserver.py), which is NOT Kubernetes: real ansible-playbook
# runs of the bundled kubernetes.core modules (k8s_info, k8s present/absent/patched + check mode, k8s_drain with a
# blocking PodDisruptionBudget, cordon/uncordon) against it through a kubeconfig, on 127.0.0.1 only.
"""kubernetes.core modules against the API stand-in."""

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
    - name: Nodes as the API sees them
      kubernetes.core.k8s_info:
        kind: Node
      register: nodes

    - name: Namespace present
      kubernetes.core.k8s:
        state: present
        definition: {apiVersion: v1, kind: Namespace, metadata: {name: ans}}
      register: ns1

    - name: Namespace present again (idempotent)
      kubernetes.core.k8s:
        state: present
        definition: {apiVersion: v1, kind: Namespace, metadata: {name: ans}}
      register: ns2

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

    - name: ConfigMap after the check-mode run
      kubernetes.core.k8s_info:
        kind: ConfigMap
        namespace: ans
        name: cfg
      register: cm_after_check

    - name: Label the worker Node (state patched)
      kubernetes.core.k8s:
        state: patched
        kind: Node
        name: ans-node
        definition:
          metadata:
            labels: {nvidia.com/gpu.present: "true"}
      register: label1

    - name: Label the worker Node again (idempotent)
      kubernetes.core.k8s:
        state: patched
        kind: Node
        name: ans-node
        definition:
          metadata:
            labels: {nvidia.com/gpu.present: "true"}
      register: label2

    - name: Nodes by label and field selectors
      kubernetes.core.k8s_info:
        kind: Node
        label_selectors: ["nvidia.com/gpu.present=true"]
        field_selectors: ["metadata.name=ans-node"]
      register: labelled

    - name: Wait for the Node to be Ready
      kubernetes.core.k8s_info:
        kind: Node
        name: ans-node
        wait: true
        wait_condition: {type: Ready, status: "True"}
        wait_timeout: 10
        wait_sleep: 1
      register: ready

    - name: Pods on the Node
      kubernetes.core.k8s_info:
        kind: Pod
        field_selectors: ["spec.nodeName=ans-node"]
      register: pods_on_node

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

    - name: Uncordon again (idempotent)
      kubernetes.core.k8s_drain:
        name: ans-node
        state: uncordon
      register: uncordon2

    - name: Bootstrap-token Secrets in kube-system
      kubernetes.core.k8s_info:
        kind: Secret
        namespace: kube-system
        field_selectors: ["type=bootstrap.kubernetes.io/token"]
      register: tokens

    - name: Events about the Node
      kubernetes.core.k8s_info:
        kind: Event
        namespace: default
        field_selectors: ["involvedObject.kind=Node"]
      register: events

    - name: Namespace absent (waits until the namespace is finalized)
      kubernetes.core.k8s:
        state: absent
        kind: Namespace
        name: ans
        wait: true
        wait_timeout: 20
      register: ns_gone

    - name: Missing object is absent already
      kubernetes.core.k8s:
        state: absent
        kind: ConfigMap
        namespace: default
        name: never-existed
      register: absent_noop

    - name: Results
      ansible.builtin.copy:
        dest: "{{ result_file }}"
        content: "{{ results | to_nice_json }}"
        mode: "0600"
      vars:
        results:
          nodes: "{{ nodes.resources | map(attribute='metadata.name') | list }}"
          ns1: "{{ ns1.changed }}"
          ns2: "{{ ns2.changed }}"
          cm1: "{{ cm1.changed }}"
          cm2: "{{ cm2.changed }}"
          cm_check: "{{ cm_check.changed }}"
          cm_after_check: "{{ cm_after_check.resources[0].data.k }}"
          label1: "{{ label1.changed }}"
          label2: "{{ label2.changed }}"
          labelled: "{{ labelled.resources | map(attribute='metadata.name') | list }}"
          ready: "{{ ready.resources | length }}"
          pods_on_node: "{{ pods_on_node.resources | map(attribute='metadata.name') | sort }}"
          drain_blocked_failed: "{{ drain_blocked.failed }}"
          drain_blocked_msg: "{{ drain_blocked.msg }}"
          pdb_gone: "{{ pdb_gone.changed }}"
          drained: "{{ drained.result }}"
          drained_changed: "{{ drained.changed }}"
          uncordon: "{{ uncordon.changed }}"
          uncordon2: "{{ uncordon2.changed }}"
          tokens: "{{ tokens.resources | length }}"
          events: "{{ events.resources | length }}"
          ns_gone: "{{ ns_gone.changed }}"
          absent_noop: "{{ absent_noop.changed }}"
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
    dyn.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": "ans"}})
    for name in ("app-1", "other"):
        pods.create(namespace="ans", body={"metadata": {"name": name, "labels": {"app": name.split("-")[0]}},
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
    result = tmp_path / "result.json"
    env = dict(os.environ)
    env.update({"K8S_AUTH_KUBECONFIG": admin_kubeconfig, "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
                "ANSIBLE_CALLBACKS_ENABLED": os.environ.get("STANDIN_TEST_CALLBACKS", "")})
    try:
        proc = subprocess.run([_ansible_playbook(), "-i", "localhost,", "-c", "local", str(pb),
                               "-e", "ansible_python_interpreter=%s" % sys.executable,
                               "-e", "result_file=%s" % result],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    finally:
        stop.set()
        hb.join(5)
    if os.environ.get("STANDIN_TEST_CALLBACKS"):
        print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    r = json.loads(result.read_text())
    assert "ans-node" in r["nodes"]
    assert r["ns1"] is False  # created by the test set-up already
    assert r["ns2"] is False
    assert r["cm1"] is True and r["cm2"] is False
    assert r["cm_check"] is True and r["cm_after_check"] == "v"  # the dry run changed nothing
    assert r["label1"] is True and r["label2"] is False
    assert r["labelled"] == ["ans-node"]
    assert r["ready"] == 1
    assert r["pods_on_node"] == ["app-1", "other"]
    assert r["drain_blocked_failed"] is True
    assert "Cannot evict pod as it would violate the pod's disruption budget." in r["drain_blocked_msg"]
    assert r["pdb_gone"] is True
    assert r["drained_changed"] is True and "Pod(s) deleted from node" in r["drained"]
    assert r["uncordon"] is True and r["uncordon2"] is False
    assert r["events"] >= 1
    assert r["ns_gone"] is True and r["absent_noop"] is False
    assert [p.metadata.name for p in pods.get(field_selector="spec.nodeName=ans-node").items] == []
