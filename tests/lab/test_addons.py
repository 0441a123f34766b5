"""The add-ons on the lab, after test_repairs.py built the cluster (start-cluster.yml installs them).

Real here: MetalLB (controller and speaker built from its Go module by lab/build-addons.sh, its own chart), kube-proxy,
helm, the storage role's Debian packages and files. Modelled by the LAB CHARTS of lab/charts: Calico's operator,
Longhorn and the GPU Operator (the real charts' names and versions, the objects the roles wait on, busybox pods).
"""

import ipaddress
import json
import socket

from conftest import api, flat, http_pod, kubectl, node, playbook, pod_ready, record_time, task_results, wait_for

CONTROL = "spark-2959"
POOL = (ipaddress.ip_address("192.168.86.200"), ipaddress.ip_address("192.168.86.220"))


def get(*args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def releases():
    """Helm release name -> (chart version, status) of the newest revision, from Helm's own Secrets' labels and
    the chart metadata helm prints."""
    found = {}
    for item in get("secrets", "-A", "-l", "owner=helm")["items"]:
        labels = item["metadata"]["labels"]
        revision = int(labels["version"])
        if revision >= found.get(labels["name"], (0,))[0]:
            found[labels["name"]] = (revision, labels["status"])
    return found


def quiet_run(name, *extra):
    run = playbook("start-cluster.yml", *extra)
    assert run.rc == 0 and run.changed == 0, run
    record_time(name, run.seconds)
    return run


def test_every_addon_is_installed_pinned_and_configured_from_the_inventory(lab_ready):
    installed = releases()
    assert {name: status for name, (_revision, status) in installed.items()} == {
        "calico": "deployed", "metallb": "deployed", "longhorn": "deployed", "gpu-operator": "deployed"}
    # Calico's Installation (rendered by the lab chart from the values the cni role gives, as the real chart does).
    network = get("installation.operator.tigera.io", "default")["spec"]["calicoNetwork"]
    assert network["mtu"] == 8950  # fabric_mtu 9000 minus VXLAN's 50
    assert network["nodeAddressAutodetectionV4"] == {"cidrs": ["10.10.10.0/24"]}
    assert network["ipPools"] == [{"name": "default-ipv4-ippool", "cidr": "192.168.0.0/16", "blockSize": 26,
                                   "encapsulation": "VXLAN", "natOutgoing": "Enabled", "nodeSelector": "all()"}]
    # The pod network contains the LAN (and so the MetalLB pool): the LAN is reserved.
    assert get("ipreservation.projectcalico.org", "dgx-spark-lan")["spec"] == {"reservedCIDRs": ["192.168.86.0/24"]}
    # MetalLB (real): the pool from the inventory, announced on the LAN interface only.
    pool = get("ipaddresspool.metallb.io", "lan-pool", "-n", "metallb-system")["spec"]
    assert pool["addresses"] == ["192.168.86.200-192.168.86.220"]
    advert = get("l2advertisement.metallb.io", "lan-advertisement", "-n", "metallb-system")["spec"]
    assert advert["interfaces"] == ["enP7s7"] and advert["ipAddressPools"] == ["lan-pool"]
    # kube-proxy runs in iptables mode here, so strictARP was left alone.
    assert "strictARP: false" in get("configmap", "kube-proxy", "-n", "kube-system")["data"]["config.conf"]
    # Longhorn (lab chart): two-node values; the default StorageClass is the inventory's choice.
    storage_class = get("storageclass", "longhorn")
    assert storage_class["parameters"]["numberOfReplicas"] == "2"
    assert storage_class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    # The GPU Operator (lab chart): the driver off (DGX OS ships it), the nvidia RuntimeClass.
    assert get("runtimeclass", "nvidia")["handler"] == "nvidia"
    env = {e["name"]: e["value"] for e in get("deployment", "gpu-operator", "-n", "gpu-operator")
           ["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"LAB_DRIVER_ENABLED": "false", "LAB_TOOLKIT_ENABLED": "false"}
    # Longhorn's node prerequisites are real packages and files on every node.
    for name in ("spark-2959", "spark-ba63"):
        assert node(name, "dpkg-query -W -f '${Status}' open-iscsi nfs-common").stdout.count("install ok installed") == 2
        assert 'devnode "^sd[a-z0-9]+"' in node(name, "cat /etc/multipath/conf.d/dgx-spark-longhorn.conf").stdout


def test_a_loadbalancer_address_from_the_pool_answers_from_the_controller(lab_ready):
    """Real MetalLB in layer 2: the speaker answers ARP for the Service's address on the lab LAN, kube-proxy takes it
    to the pod. The request leaves this machine on the lab's LAN bridge (lab_ready checked it exists)."""
    client = api()
    client.create_namespaced_pod("default", http_pod("lb-backend", "spark-ba63", labels={"lb": "backend"}))
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb-test"},
               "spec": {"type": "LoadBalancer", "selector": {"lb": "backend"},
                        "ports": [{"port": 80, "targetPort": 8080}]}}
    client.create_namespaced_service("default", service)
    try:
        wait_for(lambda: pod_ready(api(), "lb-backend"), timeout=90, what="lb-backend Ready")

        def address():
            ingress = api().read_namespaced_service("lb-test", "default").status.load_balancer.ingress
            return ingress[0].ip if ingress else None
        ip = wait_for(address, timeout=60, what="a LoadBalancer address")
        assert POOL[0] <= ipaddress.ip_address(ip) <= POOL[1], ip

        def answer():
            try:
                with socket.create_connection((ip, 80), timeout=3) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    chunks = []
                    while True:  # HTTP/1.0: the server closes when the body is sent
                        chunk = conn.recv(4096)
                        if not chunk:
                            return b"".join(chunks).decode()
                        chunks.append(chunk)
            except OSError:
                return None
        reply = wait_for(answer, timeout=60, what="an HTTP answer from %s" % ip)
        assert reply.startswith("HTTP/1.") and " 200 " in reply.splitlines()[0], reply
        assert reply.strip().splitlines()[-1] == "lb-backend", reply
    finally:
        client.delete_namespaced_service("lb-test", "default")
        client.delete_namespaced_pod("lb-backend", "default", grace_period_seconds=0)


def test_metallb_webhook_race_pool_applied_only_once_the_webhook_answers(lab_ready):
    """After a reboot the controller (and its webhook) starts last: the pool and advertisement, gone here, are applied
    only once the webhook answers a server-side dry run, and the run reports no failure on the way."""
    kubectl("delete", "ipaddresspool.metallb.io/lan-pool", "l2advertisement.metallb.io/lan-advertisement",
            "-n", "metallb-system")
    kubectl("delete", "pod", "-n", "metallb-system", "-l", "app.kubernetes.io/component=controller", "--wait=false")
    run = playbook("start-cluster.yml")
    assert run.rc == 0, run
    assert "fatal:" not in run.output and "FAILED" not in run.output, run
    assert task_results(run.output, "Wait until the desired objects can be applied (webhooks answering) for MetalLB") == ["ok"]
    # One line per object: the pool and the advertisement.
    assert task_results(run.output, "Apply the desired objects that are missing or differ, for MetalLB") == ["changed"] * 2
    assert "apply IPAddressPool lan-pool: missing" in flat(run.output), run
    assert get("ipaddresspool.metallb.io", "lan-pool", "-n", "metallb-system")["spec"]["addresses"]
    record_time("MetalLB pool and advertisement deleted, controller restarting", run.seconds)
    quiet_run("no-op run after: MetalLB webhook race")


def test_a_changed_value_is_planned_by_check_then_upgraded_then_reverted(lab_ready):
    before = releases()["calico"][0]
    check = playbook("start-cluster.yml", "--check", "--diff", "-e", "cni_ip_block_size=27")
    assert check.rc == 0, check
    assert "values differ from the inventory at installation.calicoNetwork.ipPools" in flat(check.output), check
    assert releases()["calico"][0] == before  # --check upgraded nothing
    run = playbook("start-cluster.yml", "-e", "cni_ip_block_size=27")
    assert run.rc == 0 and run.changed > 0, run
    assert task_results(run.output, "Install or upgrade the pinned chart of Calico") == ["changed"], run
    assert get("installation.operator.tigera.io", "default")["spec"]["calicoNetwork"]["ipPools"][0]["blockSize"] == 27
    assert releases()["calico"][0] == before + 1
    quiet_run("no-op run with the changed value", "-e", "cni_ip_block_size=27")
    back = playbook("start-cluster.yml")
    assert back.rc == 0 and back.changed > 0, back
    assert get("installation.operator.tigera.io", "default")["spec"]["calicoNetwork"]["ipPools"][0]["blockSize"] == 26
    record_time("Calico values changed back (helm upgrade)", back.seconds)
    quiet_run("no-op run after: Calico values changed back")


def test_bad_addon_inputs_are_refused_before_anything_changes(lab_ready):
    bad = {
        "metallb_address_pool": ["192.168.86.230-192.168.86.225", "10.0.0.1-10.0.0.5", "192.168.86.30-192.168.86.40"],
        "metallb_l2_interfaces": ["enp1s0f1np1"],
        "metallb_chart_version": "latest",
        "cni_chart_version": "^3.30",
        "gpu_operator_chart_version": "v25.3.0",
        "storage_longhorn_replica_count": 3,
        "storage_nfs_enabled": True,
        "storage_nfs_exports": [{"path": "nfs/shared", "clients": "10.10.10.0/24"}],
    }
    run = playbook("start-cluster.yml", "-e", json.dumps(bad))
    assert run.rc != 0, run
    text = flat(run.output)
    for expected in (
            "metallb_address_pool[0]: range '192.168.86.230-192.168.86.225' ends before it starts",
            "metallb_address_pool[1] '10.0.0.1-10.0.0.5' is not inside spark_lan_subnet 192.168.86.0/24",
            "metallb_address_pool[2] '192.168.86.30-192.168.86.40' contains 192.168.86.38, already used by spark-2959",
            "metallb_l2_interfaces: enp1s0f1np1 is not the LAN interface (spark_lan_interface: enP7s7)",
            "metallb_chart_version is 'latest', which is not a version",
            "cni_chart_version '^3.30' is not one pinned version",
            "gpu_operator_chart_version v25.3.0 is below v25.10.0",
            "storage_longhorn_replica_count: 3 replicas on 2 node(s)",
            "storage_nfs_exports[0].path: 'nfs/shared' is not an absolute path"):
        assert expected in text, (expected, run)
    assert all(host["changed"] == 0 for host in run.recap.values()), run


def test_a_missing_storage_prerequisite_is_named_with_its_node(lab_ready):
    """The lab kernel has no iscsi_tcp (no loadable modules at all): asked for, the run fails naming node and module."""
    run = playbook("start-cluster.yml", "--tags", "storage", "-e", '{"storage_kernel_modules": ["iscsi_tcp"]}')
    assert run.rc != 0, run
    text = flat(run.output)
    for name in ("spark-2959", "spark-ba63"):
        assert "%s: Longhorn needs the kernel module(s) iscsi_tcp, which this kernel cannot load" % name in text, run
    # Back to the lab's inventory: the boot-time module list is repaired, then all is quiet.
    fixed = playbook("start-cluster.yml")
    assert fixed.rc == 0, fixed
    quiet_run("no-op run after: storage prerequisite missing")
