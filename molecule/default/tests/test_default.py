"""Verify the lab after start-cluster.yml: services, files and modes through `podman exec` (testinfra's podman
backend), and the Node objects through the API of the lab's real Kubernetes (lab/build-kubernetes.sh)."""

import os

import pytest

testinfra_hosts = ["podman://spark-2959", "podman://spark-ba63"]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KUBECONFIG = os.path.join(REPO, ".lab", "kubeconfig")


@pytest.mark.parametrize("service", ["ssh", "containerd", "kubelet"])
def test_services_running_and_enabled(host, service):
    unit = host.service(service)
    assert unit.is_running
    assert unit.is_enabled


@pytest.mark.parametrize("package", ["kubeadm", "kubelet", "kubectl"])
def test_kubernetes_packages_pinned_and_held(host, package):
    assert host.package(package).version.startswith("1.31.")
    assert host.run("dpkg-query -W -f '${Status}' %s" % package).stdout.startswith("hold ")


def test_swap_off_modules_and_sysctls_persisted(host):
    assert host.file("/proc/swaps").content_string.strip().count("\n") == 0
    assert host.file("/etc/modules-load.d/dgx-spark-kubernetes.conf").content_string == "overlay\nbr_netfilter\n"
    assert host.sysctl("net.ipv4.ip_forward") == 1
    persisted = host.file("/etc/sysctl.d/99-dgx-spark-kubernetes.conf").content_string
    assert "net.ipv4.ip_forward=1" in persisted.replace(" ", "")


def test_containerd_uses_the_systemd_cgroup_driver(host):
    config = host.file("/etc/containerd/config.toml")
    assert "SystemdCgroup = true" in config.content_string
    assert config.mode == 0o644


def test_kubeconfigs_are_private(host):
    assert host.file("/etc/kubernetes/kubelet.conf").exists
    if host.check_output("hostname") == "spark-2959":
        assert host.file("/etc/kubernetes/admin.conf").mode == 0o600
        operator = host.file("/home/spark/.kube/config")
        assert operator.mode == 0o600 and operator.user == "spark"
        assert host.file("/home/spark/.kube").mode == 0o700


def test_fabric_persisted(host):
    netplan = host.file("/etc/netplan/40-dgx-spark-fabric.yaml")
    assert netplan.mode == 0o600
    assert "mtu: 9000" in netplan.content_string


def test_both_nodes_ready_through_the_api():
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=KUBECONFIG, client_configuration=configuration)
    configuration.host = "https://192.168.86.38:6443"
    nodes = client.CoreV1Api(client.ApiClient(configuration)).list_node().items
    ready = dict((n.metadata.name, [c.status for c in n.status.conditions if c.type == "Ready"][0]) for n in nodes)
    assert ready == {"spark-2959": "True", "spark-ba63": "True"}
    worker = [n for n in nodes if n.metadata.name == "spark-ba63"][0]
    assert "node-role.kubernetes.io/worker" in worker.metadata.labels
    assert set(n.status.node_info.kubelet_version for n in nodes) == {"v1.31.14"}
    addresses = dict((n.metadata.name, n.status.addresses[0].address) for n in nodes)
    assert addresses == {"spark-2959": "10.10.10.1", "spark-ba63": "10.10.10.2"}
