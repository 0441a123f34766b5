"""addons (pure): pinned chart versions, Helm release Secrets decoded the way Helm writes them, the install plan,
readiness of each kind the add-ons wait for (objects shaped like ``kubectl get -o json`` prints them), drift of the
desired objects, kube-proxy's mode and the CIDRs Calico must reserve.
"""

import base64
import gzip
import ipaddress
import json

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import addons
from ansible_collections.dgx_spark.cluster.plugins.module_utils.addons import AddonInputError


# ---------------------------------------------------------------------------------------------------------------
# version_problem / version_tuple
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0.15.2", "v25.10.0", "1.2.3-rc.1", "v3.30.3", "4.11.0", "1.9.1",
                                   "1.2.3+build.7", " 0.15.2 "])
def test_pinned_versions_are_accepted(value):
    assert addons.version_problem("metallb_chart_version", value) is None


@pytest.mark.parametrize("value", ["latest", "LATEST", "stable", "*"])
def test_words_that_are_not_versions_are_refused(value):
    assert addons.version_problem("metallb_chart_version", value) == (
        "metallb_chart_version is '%s', which is not a version: pin one chart version (for example 0.15.2)" % value)


@pytest.mark.parametrize("value", ["", "   ", None])
def test_an_empty_version_is_refused(value):
    assert addons.version_problem("cni_chart_version", value) == (
        "cni_chart_version is empty: pin one chart version (for example 0.15.2)")


@pytest.mark.parametrize("value", ["^1.2.0", "~1.2", ">=1.0.0", "1.2", "1.x", "1.2.*", "1.2.3 || 1.2.4", "v1",
                                   "1.2.3-"])
def test_ranges_wildcards_and_partial_versions_are_refused(value):
    assert addons.version_problem("storage_longhorn_chart_version", value) == (
        "storage_longhorn_chart_version '%s' is not one pinned version (a range, a wildcard or a partial version "
        "lets the chart move under the cluster): pin one release such as 1.2.3" % value)


def test_the_message_names_the_variable():
    for name in ("cni_chart_version", "gpu_operator_chart_version", "storage_nfs_chart_version"):
        assert addons.version_problem(name, "latest").startswith(name + " is 'latest'")
        assert addons.version_problem(name, "^1.0.0").startswith(name + " '^1.0.0' is not one pinned version")


def test_a_number_is_read_as_its_text():
    # An unquoted 1.2 in YAML is a float: a partial version all the same.
    assert addons.version_problem("x", 1.2) == (
        "x '1.2' is not one pinned version (a range, a wildcard or a partial version lets the chart move under the "
        "cluster): pin one release such as 1.2.3")


@pytest.mark.parametrize("value, expected", [
    ("0.15.2", (0, 15, 2)), ("v25.10.0", (25, 10, 0)), ("1.2.3-rc.1", (1, 2, 3)), (" v26.3.3 ", (26, 3, 3)),
    ("25.3.0", (25, 3, 0)), ("1.2", None), ("latest", None), ("", None), (None, None), ("x1.2.3", None),
])
def test_version_tuple(value, expected):
    assert addons.version_tuple(value) == expected


def test_version_tuples_order_numerically():
    assert addons.version_tuple("v25.3.0") < addons.version_tuple("v25.10.0") < addons.version_tuple("v26.3.3")


# ---------------------------------------------------------------------------------------------------------------
# Helm release Secrets
# ---------------------------------------------------------------------------------------------------------------

def helm_record(name="metallb", revision=1, status="deployed", chart="metallb", version="0.15.2",
                app_version="v0.15.2", config=None, namespace="metallb-system"):
    """A release as Helm 3 serialises it (pkg/release.Release), trimmed of the chart's templates."""
    record = {
        "name": name,
        "info": {"first_deployed": "2025-09-01T10:00:00.000000000Z", "last_deployed": "2025-09-02T10:00:00.0Z",
                 "deleted": "", "description": "Upgrade complete" if revision > 1 else "Install complete",
                 "status": status},
        "chart": {"metadata": {"name": chart, "version": version, "appVersion": app_version, "apiVersion": "v2",
                               "description": "A network load-balancer implementation for Kubernetes",
                               "type": "application"},
                  "lock": None, "templates": [], "values": {"speaker": {"frr": {"enabled": True}}},
                  "schema": None, "files": []},
        "manifest": "---\n# Source: metallb/templates/service-accounts.yaml\napiVersion: v1\nkind: ServiceAccount\n",
        "version": revision,
        "namespace": namespace,
    }
    if config is not None:  # Release.Config is omitempty: no values given, no "config" key
        record["config"] = config
    return record


def encode_release(record, gzipped=True):
    """``data.release`` as the API returns it: the Secret's base64 of Helm's base64 of the gzipped JSON."""
    raw = json.dumps(record).encode("utf-8")
    if gzipped:
        raw = gzip.compress(raw)
    return base64.b64encode(base64.b64encode(raw)).decode("ascii")


def helm_secret(name="metallb", revision=1, status="deployed", namespace="metallb-system", gzipped=True,
                secret_type="helm.sh/release.v1", labels=None, **record):
    record.setdefault("name", name)
    record.setdefault("namespace", namespace)
    encoded = encode_release(helm_record(revision=revision, status=status, **record), gzipped=gzipped)
    if labels is None:
        labels = {"owner": "helm", "name": name, "version": str(revision), "status": status,
                  "modifiedAt": "1756807200"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": secret_type,
        "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, revision), "namespace": namespace,
                     "creationTimestamp": "2025-09-02T10:00:00Z", "resourceVersion": "4242",
                     "uid": "0b7e3c1e-6c55-4b0e-9a77-5c2f3b1f1a%02d" % revision, "labels": labels},
        "data": {"release": encoded},
    }


def test_decode_release_reads_a_gzipped_record():
    encoded = helm_secret(revision=3, config={"speaker": {"frr": {"enabled": False}}})["data"]["release"]
    assert addons.decode_release(encoded) == {
        "chart": "metallb", "chart_version": "0.15.2", "app_version": "v0.15.2", "status": "deployed",
        "revision": 3, "values": {"speaker": {"frr": {"enabled": False}}},
    }


def test_decode_release_reads_a_record_that_is_not_gzipped():
    encoded = encode_release(helm_record(revision=2, status="superseded", config={"a": 1}), gzipped=False)
    assert addons.decode_release(encoded) == {
        "chart": "metallb", "chart_version": "0.15.2", "app_version": "v0.15.2", "status": "superseded",
        "revision": 2, "values": {"a": 1},
    }


def test_decode_release_without_config_has_no_values():
    assert addons.decode_release(helm_secret()["data"]["release"])["values"] == {}


def test_the_encoding_is_really_double_base64_of_gzip():
    encoded = helm_secret()["data"]["release"]
    inner = base64.b64decode(encoded)
    assert inner.startswith(b"H4sI")  # Helm's base64 of the gzip magic, as `kubectl get secret` users know it
    assert base64.b64decode(inner)[:2] == addons.GZIP_MAGIC


def test_latest_release_takes_the_newest_revision():
    secrets = [
        helm_secret(revision=1, status="superseded", version="0.14.9"),
        helm_secret(revision=3, status="deployed", version="0.15.2", config={"speaker": {"frr": {"enabled": False}}}),
        helm_secret(revision=2, status="superseded", version="0.15.0"),
    ]
    assert addons.latest_release(secrets) == {
        "chart": "metallb", "chart_version": "0.15.2", "app_version": "v0.15.2", "status": "deployed",
        "revision": 3, "values": {"speaker": {"frr": {"enabled": False}}},
    }


def test_revisions_compare_as_numbers_not_text():
    secrets = [helm_secret(revision=9, status="superseded", version="0.14.9"),
               helm_secret(revision=10, status="failed", version="0.15.2")]
    release = addons.latest_release(secrets)
    assert (release["revision"], release["status"], release["chart_version"]) == (10, "failed", "0.15.2")


def test_latest_release_ignores_other_types_and_unnumbered_versions():
    newest = helm_secret(revision=2, status="deployed", version="0.15.2")
    secrets = [
        helm_secret(revision=7, version="9.9.9", secret_type="Opaque"),
        helm_secret(revision=8, version="9.9.8", labels={"owner": "helm", "name": "metallb", "version": "latest"}),
        helm_secret(revision=9, version="9.9.7", labels={"owner": "helm", "name": "metallb"}),
        dict(helm_secret(revision=10, version="9.9.6"), metadata={"name": "sh.helm.release.v1.metallb.v10"}),
        dict(helm_secret(revision=11, version="9.9.5"), data={}),
        newest,
        {"type": "kubernetes.io/service-account-token", "metadata": {"name": "default-token"}, "data": {}},
    ]
    release = addons.latest_release(secrets)
    assert (release["revision"], release["chart_version"]) == (2, "0.15.2")


@pytest.mark.parametrize("secrets", [None, [], [helm_secret(revision=4, secret_type="Opaque")],
                                     [helm_secret(revision=4, labels={"owner": "helm", "version": "x"})]])
def test_latest_release_is_none_without_a_release_secret(secrets):
    assert addons.latest_release(secrets) is None


def test_the_revision_falls_back_to_the_label_when_the_record_has_none():
    record = helm_record(revision=5)
    del record["version"]
    secret = helm_secret(revision=5)
    secret["data"]["release"] = encode_release(record)
    assert addons.latest_release([secret])["revision"] == 5


# ---------------------------------------------------------------------------------------------------------------
# values_differences / plan_release
# ---------------------------------------------------------------------------------------------------------------

INSTALLED = {"chart": "metallb", "chart_version": "0.15.2", "app_version": "v0.15.2", "status": "deployed",
             "revision": 3, "values": {"speaker": {"frr": {"enabled": False}}}}
WANTED_VALUES = {"speaker": {"frr": {"enabled": False}}}


def installed(**changes):
    release = json.loads(json.dumps(INSTALLED))
    release.update(changes)
    return release


def test_values_differences_names_dotted_paths_sorted():
    wanted = {"speaker": {"frr": {"enabled": False}, "tolerations": []}, "controller": {"logLevel": "info"}}
    current = {"speaker": {"frr": {"enabled": True}}, "controller": {"logLevel": "info"}, "crds": {"enabled": True}}
    assert addons.values_differences(wanted, current) == ["crds", "speaker.frr.enabled", "speaker.tolerations"]


def test_values_differences_of_equal_values_is_empty():
    assert addons.values_differences({}, {}) == []
    assert addons.values_differences(WANTED_VALUES, json.loads(json.dumps(WANTED_VALUES))) == []


def test_values_differences_normalises_like_json():
    # Helm stores JSON: an int and the same float, a tuple and a list, int and string keys compare equal.
    assert addons.values_differences({"mtu": 1, "cidrs": ("10.10.10.0/24",)},
                                     {"mtu": 1.0, "cidrs": ["10.10.10.0/24"]}) == []
    assert addons.values_differences({1: "a"}, {"1": "a"}) == []
    assert addons.values_differences({"mtu": 8950}, {"mtu": "8950"}) == ["mtu"]


def test_values_differences_of_whole_values():
    assert addons.values_differences([1], [2]) == ["(all values)"]
    assert addons.values_differences({"a": [1, 2]}, {"a": [2, 1]}) == ["a"]
    assert addons.values_differences({"a": {"b": 1}}, {"a": "b"}) == ["a"]


def test_a_boolean_and_a_number_are_different_values():
    assert addons.values_differences({"enabled": True}, {"enabled": 1}) == ["enabled"]
    assert addons.values_differences({"replicas": 0}, {"replicas": False}) == ["replicas"]


def test_plan_a_missing_release():
    assert addons.plan_release(None, "metallb", "0.15.2", WANTED_VALUES) == (True, ["the release is not installed"])


def test_plan_an_up_to_date_release():
    assert addons.plan_release(installed(), "metallb", "0.15.2", WANTED_VALUES) == (False, [])


def test_plan_a_release_decoded_from_its_secrets():
    secrets = [helm_secret(revision=1, status="superseded", version="0.14.9"),
               helm_secret(revision=2, version="0.15.2", config=WANTED_VALUES)]
    assert addons.plan_release(addons.latest_release(secrets), "metallb", "0.15.2", WANTED_VALUES) == (False, [])


def test_plan_another_chart_version():
    assert addons.plan_release(installed(chart_version="0.14.9"), "metallb", "0.15.2", WANTED_VALUES) == (
        True, ["chart version 0.14.9 is installed, 0.15.2 is pinned"])


@pytest.mark.parametrize("stored, pinned", [("v25.10.0", "25.10.0"), ("25.10.0", "v25.10.0"),
                                            ("v25.10.0", "v25.10.0")])
def test_a_leading_v_is_the_same_version(stored, pinned):
    release = installed(chart="gpu-operator", chart_version=stored, values={})
    assert addons.plan_release(release, "gpu-operator", pinned, {}) == (False, [])


def test_plan_another_chart():
    assert addons.plan_release(installed(), "gpu-operator", "0.15.2", WANTED_VALUES) == (
        True, ["the release runs chart metallb, wants gpu-operator"])


@pytest.mark.parametrize("status, reason", [
    ("failed", "the release is failed, not deployed"),
    ("pending-upgrade", "the release is pending-upgrade, not deployed"),
    ("uninstalling", "the release is uninstalling, not deployed"),
    (None, "the release is in an unknown state, not deployed"),
])
def test_plan_a_release_that_is_not_deployed(status, reason):
    assert addons.plan_release(installed(status=status), "metallb", "0.15.2", WANTED_VALUES) == (True, [reason])


def test_plan_values_that_differ_names_the_path():
    release = installed(values={"speaker": {"frr": {"enabled": True}}})
    assert addons.plan_release(release, "metallb", "0.15.2", WANTED_VALUES) == (
        True, ["values differ from the inventory at speaker.frr.enabled"])


def test_plan_values_set_by_hand_on_the_release_count_as_a_difference():
    release = installed(values={"speaker": {"frr": {"enabled": False}}, "controller": {"logLevel": "debug"}})
    assert addons.plan_release(release, "metallb", "0.15.2", WANTED_VALUES) == (
        True, ["values differ from the inventory at controller"])


def test_plan_wanted_values_missing_from_a_release_without_config():
    release = addons.latest_release([helm_secret(revision=1)])
    assert addons.plan_release(release, "metallb", "0.15.2", WANTED_VALUES) == (
        True, ["values differ from the inventory at speaker"])


def test_plan_no_values_against_no_values():
    assert addons.plan_release(installed(values={}), "metallb", "0.15.2", None) == (False, [])


def test_plan_an_int_against_the_stored_float_is_the_same_value():
    release = installed(chart="tigera-operator", chart_version="v3.30.3",
                        values={"installation": {"calicoNetwork": {"mtu": 8950.0, "ipPools": [{"blockSize": 26}]}}})
    wanted = {"installation": {"calicoNetwork": {"mtu": 8950, "ipPools": ({"blockSize": 26.0},)}}}
    assert addons.plan_release(release, "tigera-operator", "v3.30.3", wanted) == (False, [])


def test_plan_more_than_five_differences_are_summarised():
    wanted = dict(("k%d" % i, i) for i in range(7))
    release = installed(values=dict(("k%d" % i, -i - 1) for i in range(7)))
    assert addons.plan_release(release, "metallb", "0.15.2", wanted) == (
        True, ["values differ from the inventory at k0, k1, k2, k3, k4 and 2 more"])


def test_plan_exactly_five_differences_are_all_named():
    wanted = dict(("k%d" % i, i) for i in range(5))
    release = installed(values={})
    assert addons.plan_release(release, "metallb", "0.15.2", wanted) == (
        True, ["values differ from the inventory at k0, k1, k2, k3, k4"])


def test_plan_gives_every_reason_in_order():
    release = installed(chart="metallb-old", chart_version="0.13.12", status="failed", values={})
    assert addons.plan_release(release, "metallb", "0.15.2", WANTED_VALUES) == (True, [
        "the release runs chart metallb-old, wants metallb",
        "chart version 0.13.12 is installed, 0.15.2 is pinned",
        "the release is failed, not deployed",
        "values differ from the inventory at speaker",
    ])


# ---------------------------------------------------------------------------------------------------------------
# readiness
# ---------------------------------------------------------------------------------------------------------------

def daemonset(desired=2, ready=2, updated=2, available=2, generation=3, observed=3, name="calico-node",
              namespace="calico-system"):
    status = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberMisscheduled": 0,
              "numberReady": ready, "observedGeneration": observed}
    # The API leaves out zero values of the optional fields.
    if updated:
        status["updatedNumberScheduled"] = updated
    if available:
        status["numberAvailable"] = available
    if desired - available:
        status["numberUnavailable"] = desired - available
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "generation": generation, "uid": "5d3c0c44",
                     "annotations": {"deprecated.daemonset.template.generation": str(generation)}},
        "spec": {"selector": {"matchLabels": {"k8s-app": name}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
        "status": status,
    }


def deployment(replicas=1, ready=1, updated=1, available=1, generation=1, observed=1, name="tigera-operator",
               namespace="tigera-operator"):
    spec = {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"name": name}}}
    if replicas is not None:
        spec["replicas"] = replicas
    status = {"observedGeneration": observed, "replicas": max(replicas or 0, updated)}
    for key, value in (("readyReplicas", ready), ("updatedReplicas", updated), ("availableReplicas", available)):
        if value:
            status[key] = value
    status["conditions"] = [{"type": "Available", "status": "True" if available else "False",
                             "reason": "MinimumReplicasAvailable"},
                            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": generation}, "spec": spec,
            "status": status}


DS = {"kind": "DaemonSet", "name": "calico-node", "namespace": "calico-system"}
DEPLOY = {"kind": "Deployment", "name": "tigera-operator", "namespace": "tigera-operator"}


@pytest.mark.parametrize("obj, problem", [
    (daemonset(), None),
    (daemonset(ready=1, available=1), "1/2 pods ready"),
    (daemonset(ready=0, updated=0, available=0), "0/2 pods ready"),
    (daemonset(updated=1), "1/2 pods updated to the current spec"),
    (daemonset(available=1), "1/2 pods available"),
    (daemonset(generation=4, observed=3), "its controller has not seen the latest spec yet"),
    (daemonset(generation=4, observed=3, desired=0, ready=0, updated=0, available=0),
     "its controller has not seen the latest spec yet"),
    (daemonset(desired=0, ready=0, updated=0, available=0), "no pod is scheduled yet (0 desired)"),
], ids=["ready", "half-ready", "none-ready", "not-updated", "not-available", "old-generation",
        "old-generation-first", "zero-desired"])
def test_daemonset_readiness(obj, problem):
    assert addons.ready_problem(DS, obj) == problem


def test_a_daemonset_the_controller_has_not_reported_on():
    obj = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "calico-node", "generation": 1},
           "status": {}}
    assert addons.ready_problem(DS, obj) == "no pod is scheduled yet (0 desired)"


@pytest.mark.parametrize("obj, problem", [
    (deployment(), None),
    (deployment(replicas=2, ready=2, updated=2, available=2), None),
    (deployment(replicas=0, ready=0, updated=0, available=0), "scaled to 0 replicas"),
    (deployment(replicas=2, ready=1, updated=2, available=1), "1/2 pods ready"),
    (deployment(replicas=1, ready=0, updated=1, available=0), "0/1 pods ready"),
    (deployment(replicas=2, ready=2, updated=1, available=2), "1/2 pods updated to the current spec"),
    (deployment(replicas=2, ready=2, updated=2, available=1), "1/2 pods available"),
    (deployment(generation=2, observed=1), "its controller has not seen the latest spec yet"),
    (deployment(replicas=None, ready=1, updated=1, available=1), None),
    (deployment(replicas=None, ready=0, updated=0, available=0), "0/1 pods ready"),
], ids=["one-ready", "two-ready", "scaled-to-0", "partially-ready", "none-ready", "not-updated", "not-available",
        "old-generation", "default-replicas", "default-replicas-none-ready"])
def test_deployment_readiness(obj, problem):
    assert addons.ready_problem(DEPLOY, obj) == problem


EP = {"kind": "Endpoints", "name": "metallb-webhook-service", "namespace": "metallb-system"}
ADDRESS = {"ip": "172.20.14.5", "nodeName": "spark-2959",
           "targetRef": {"kind": "Pod", "name": "metallb-controller-7d9b6c7f4d-x2l9q", "namespace": "metallb-system"}}
PORTS = [{"port": 9443, "protocol": "TCP"}]


def endpoints(subsets):
    obj = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": "metallb-webhook-service", "namespace": "metallb-system",
                        "labels": {"app.kubernetes.io/name": "metallb"}}}
    if subsets is not None:
        obj["subsets"] = subsets
    return obj


@pytest.mark.parametrize("subsets, problem", [
    ([{"addresses": [ADDRESS], "ports": PORTS}], None),
    ([{"notReadyAddresses": [ADDRESS], "ports": PORTS}, {"addresses": [ADDRESS], "ports": PORTS}], None),
    ([{"notReadyAddresses": [ADDRESS], "ports": PORTS}], "no ready endpoint behind the Service yet"),
    ([{"addresses": [], "ports": PORTS}], "no ready endpoint behind the Service yet"),
    ([], "no ready endpoint behind the Service yet"),
    (None, "no ready endpoint behind the Service yet"),  # kubectl prints no subsets at all
], ids=["ready", "one-ready-subset", "not-ready-only", "empty-addresses", "empty-subsets", "no-subsets"])
def test_endpoints_readiness(subsets, problem):
    assert addons.ready_problem(EP, endpoints(subsets)) == problem


VWC = {"kind": "ValidatingWebhookConfiguration", "name": "metallb-webhook-configuration"}
CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM="


def webhook(name, ca=CA):
    config = {"service": {"name": "metallb-webhook-service", "namespace": "metallb-system",
                          "path": "/validate-metallb-io-v1beta1-%s" % name.split("validation")[0], "port": 443}}
    if ca is not None:
        config["caBundle"] = ca
    return {"name": name, "admissionReviewVersions": ["v1"], "clientConfig": config, "failurePolicy": "Fail",
            "sideEffects": "None", "timeoutSeconds": 10,
            "rules": [{"apiGroups": ["metallb.io"], "apiVersions": ["v1beta1"], "operations": ["CREATE", "UPDATE"],
                       "resources": [name.split("validation")[0] + "s"], "scope": "*"}]}


def vwc(hooks):
    obj = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "metallb-webhook-configuration"}}
    if hooks is not None:
        obj["webhooks"] = hooks
    return obj


def test_webhooks_with_their_ca_bundles_are_ready():
    hooks = [webhook("ipaddresspoolvalidationwebhook.metallb.io"),
             webhook("l2advertisementvalidationwebhook.metallb.io")]
    assert addons.ready_problem(VWC, vwc(hooks)) is None


def test_webhooks_without_a_ca_bundle_are_named():
    hooks = [webhook("bgppeervalidationwebhook.metallb.io"),
             webhook("ipaddresspoolvalidationwebhook.metallb.io", ca=None),
             webhook("l2advertisementvalidationwebhook.metallb.io", ca="")]
    assert addons.ready_problem(VWC, vwc(hooks)) == (
        "webhook ipaddresspoolvalidationwebhook.metallb.io, l2advertisementvalidationwebhook.metallb.io has no CA "
        "bundle yet (certificate not injected)")


def test_one_webhook_without_a_ca_bundle():
    hooks = [webhook("ipaddresspoolvalidationwebhook.metallb.io", ca=None)]
    assert addons.ready_problem(VWC, vwc(hooks)) == (
        "webhook ipaddresspoolvalidationwebhook.metallb.io has no CA bundle yet (certificate not injected)")


@pytest.mark.parametrize("hooks", [None, []])
def test_a_webhook_configuration_without_webhooks(hooks):
    assert addons.ready_problem(VWC, vwc(hooks)) == "has no webhooks yet"


CRD = {"kind": "CustomResourceDefinition", "name": "ipaddresspools.metallb.io"}


def crd(established):
    conditions = [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                   "message": "no conflicts found", "lastTransitionTime": "2025-09-02T10:00:00Z"}]
    if established is not None:
        conditions.append({"type": "Established", "status": established, "reason": "InitialNamesAccepted",
                           "message": "the initial names have been accepted",
                           "lastTransitionTime": "2025-09-02T10:00:01Z"})
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "ipaddresspools.metallb.io"},
            "status": {"acceptedNames": {"kind": "IPAddressPool", "plural": "ipaddresspools"},
                       "conditions": conditions, "storedVersions": ["v1beta1"]}}


@pytest.mark.parametrize("established, problem", [("True", None), ("False", "is not Established yet"),
                                                  (None, "is not Established yet")])
def test_crd_readiness(established, problem):
    assert addons.ready_problem(CRD, crd(established)) == problem


def test_a_crd_without_status_is_not_established():
    assert addons.ready_problem(CRD, {"kind": "CustomResourceDefinition", "metadata": {"name": CRD["name"]}}) == (
        "is not Established yet")


TS = {"kind": "TigeraStatus", "name": "calico"}


def tigerastatus(available=("True", "AllObjectsAvailable", "All objects available"),
                 progressing=("False", "AllObjectsAvailable", "All Objects Available"),
                 degraded=("False", "AllObjectsAvailable", "")):
    conditions = []
    for kind, values in (("Available", available), ("Progressing", progressing), ("Degraded", degraded)):
        if values is None:
            continue
        status, reason, message = values
        condition = {"type": kind, "status": status, "lastTransitionTime": "2025-09-02T10:01:00Z",
                     "observedGeneration": 2}
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        conditions.append(condition)
    return {"apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus", "metadata": {"name": "calico"},
            "spec": {}, "status": {"conditions": conditions}}


@pytest.mark.parametrize("obj, problem", [
    (tigerastatus(), None),
    (tigerastatus(available=("False", "ResourceNotReady", ""), degraded=("True", "ResourceNotReady",
                                                                         "Error querying installation: not found")),
     "is Degraded: Error querying installation: not found"),
    (tigerastatus(degraded=("True", "ResourceReadError", "")), "is Degraded: ResourceReadError"),
    (tigerastatus(degraded=("True", None, None)), "is Degraded: no reason given"),
    (tigerastatus(available=("False", "ResourceNotReady", ""),
                  progressing=("True", "ResourceNotReady", "DaemonSet \"calico-system/calico-node\" is not available "
                                                           "(awaiting 1 pods)")),
     "is not Available yet: DaemonSet \"calico-system/calico-node\" is not available (awaiting 1 pods)"),
    (tigerastatus(available=("False", "ResourceNotReady", ""), progressing=("True", "ResourceNotReady", "")),
     "is not Available yet"),
    (tigerastatus(available=None, progressing=None, degraded=None), "is not Available yet"),
], ids=["available", "degraded-message", "degraded-reason", "degraded-bare", "progressing", "not-available",
        "no-conditions"])
def test_tigerastatus_readiness(obj, problem):
    assert addons.ready_problem(TS, obj) == problem


STORAGE_CLASS = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                 "metadata": {"name": "longhorn",
                              "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                 "provisioner": "driver.longhorn.io", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
                 "allowVolumeExpansion": True, "parameters": {"numberOfReplicas": "2", "dataLocality": "disabled"}}
RUNTIME_CLASS = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"},
                 "handler": "nvidia"}


@pytest.mark.parametrize("entry, obj", [({"kind": "StorageClass", "name": "longhorn"}, STORAGE_CLASS),
                                        ({"kind": "RuntimeClass", "name": "nvidia"}, RUNTIME_CLASS)])
def test_classes_are_ready_when_they_exist(entry, obj):
    assert addons.ready_problem(entry, obj) is None
    assert addons.ready_problem(entry, None) == "does not exist yet"


@pytest.mark.parametrize("kind", addons.READY_KINDS)
def test_every_kind_is_not_ready_while_absent(kind):
    assert addons.ready_problem({"kind": kind, "name": "x", "namespace": "y"}, None) == "does not exist yet"


def test_the_kinds_judged():
    assert addons.READY_KINDS == ("DaemonSet", "Deployment", "Endpoints", "ValidatingWebhookConfiguration",
                                  "CustomResourceDefinition", "StorageClass", "RuntimeClass", "TigeraStatus")


@pytest.mark.parametrize("obj", [None, {"kind": "Pod", "metadata": {"name": "x"}}])
def test_an_unknown_kind_is_a_caller_mistake(obj):
    with pytest.raises(AddonInputError) as raised:
        addons.ready_problem({"kind": "Pod", "name": "x", "namespace": "default"}, obj)
    assert str(raised.value) == (
        "cannot judge the readiness of kind 'Pod' (one of DaemonSet, Deployment, Endpoints, "
        "ValidatingWebhookConfiguration, CustomResourceDefinition, StorageClass, RuntimeClass, TigeraStatus)")
    assert isinstance(raised.value, ValueError)


def test_not_ready_lines_in_entry_order():
    entries = [
        {"kind": "Deployment", "name": "metallb-controller", "namespace": "metallb-system"},
        {"kind": "Endpoints", "name": "metallb-webhook-service", "namespace": "metallb-system"},
        {"kind": "ValidatingWebhookConfiguration", "name": "metallb-webhook-configuration"},
        {"kind": "DaemonSet", "name": "metallb-speaker", "namespace": "metallb-system"},
        {"kind": "StorageClass", "name": "longhorn"},
    ]
    found = {
        ("Deployment", "metallb-system", "metallb-controller"):
            deployment(name="metallb-controller", namespace="metallb-system"),
        ("Endpoints", "metallb-system", "metallb-webhook-service"): endpoints([{"notReadyAddresses": [ADDRESS]}]),
        ("ValidatingWebhookConfiguration", "", "metallb-webhook-configuration"):
            vwc([webhook("ipaddresspoolvalidationwebhook.metallb.io", ca=None)]),
        ("DaemonSet", "metallb-system", "metallb-speaker"): daemonset(ready=1, available=1, name="metallb-speaker",
                                                                      namespace="metallb-system"),
    }
    assert addons.not_ready(entries, found) == [
        "Endpoints metallb-system/metallb-webhook-service: no ready endpoint behind the Service yet",
        "ValidatingWebhookConfiguration metallb-webhook-configuration: webhook "
        "ipaddresspoolvalidationwebhook.metallb.io has no CA bundle yet (certificate not injected)",
        "DaemonSet metallb-system/metallb-speaker: 1/2 pods ready",
        "StorageClass longhorn: does not exist yet",
    ]


def test_not_ready_line_format():
    found = {("DaemonSet", "calico-system", "calico-node"): daemonset(ready=1, available=1)}
    assert addons.not_ready([DS], found) == ["DaemonSet calico-system/calico-node: 1/2 pods ready"]


def test_not_ready_is_empty_when_all_are_ready():
    found = {("DaemonSet", "calico-system", "calico-node"): daemonset(),
             ("TigeraStatus", "", "calico"): tigerastatus()}
    assert addons.not_ready([DS, TS], found) == []
    assert addons.not_ready(None, {}) == []
    assert addons.not_ready([], {}) == []


def test_an_object_is_looked_up_by_kind_namespace_and_name():
    # The same name in another namespace is not the object waited for.
    found = {("DaemonSet", "kube-system", "calico-node"): daemonset(namespace="kube-system")}
    assert addons.not_ready([DS], found) == ["DaemonSet calico-system/calico-node: does not exist yet"]
    assert addons.key_of(DS) == ("DaemonSet", "calico-system", "calico-node")
    assert addons.key_of(VWC) == ("ValidatingWebhookConfiguration", "", "metallb-webhook-configuration")
    assert addons.key_of(dict(VWC, namespace=None)) == ("ValidatingWebhookConfiguration", "",
                                                        "metallb-webhook-configuration")


def test_describe():
    assert addons.describe(DS) == "DaemonSet calico-system/calico-node"
    assert addons.describe(TS) == "TigeraStatus calico"
    assert addons.describe(dict(TS, namespace="")) == "TigeraStatus calico"


# ---------------------------------------------------------------------------------------------------------------
# desired objects: object_entry, resource_name, object_drift
# ---------------------------------------------------------------------------------------------------------------

POOL = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "lan-pool", "namespace": "metallb-system"},
        "spec": {"addresses": ["192.168.86.200-192.168.86.220"]}}
L2 = {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
      "metadata": {"name": "lan-advertisement", "namespace": "metallb-system"},
      "spec": {"ipAddressPools": ["lan-pool"], "interfaces": ["enP7s7"]}}


def live_pool(addresses=("192.168.86.200-192.168.86.220",), labels=None, name="lan-pool", namespace="metallb-system"):
    metadata = {"name": name, "namespace": namespace, "uid": "9a1f6c1e-5b0e-4b7a-8c34-0c8f4a1e2b3c",
                "resourceVersion": "183027", "generation": 1, "creationTimestamp": "2025-09-02T10:05:00Z",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(POOL)},
                "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                                   "apiVersion": "metallb.io/v1beta1", "fieldsType": "FieldsV1", "fieldsV1": {}}]}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": metadata,
            "spec": {"addresses": list(addresses), "autoAssign": True, "avoidBuggyIPs": False},
            "status": {"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 20, "availableIPv6": 0}}


def test_object_entry():
    assert addons.object_entry(POOL) == {"api_version": "metallb.io/v1beta1", "kind": "IPAddressPool",
                                         "name": "lan-pool", "namespace": "metallb-system"}
    assert addons.object_entry(RUNTIME_CLASS) == {"api_version": "node.k8s.io/v1", "kind": "RuntimeClass",
                                                  "name": "nvidia", "namespace": ""}


@pytest.mark.parametrize("manifest", ["kind: IPAddressPool", None, ["a"]])
def test_object_entry_refuses_what_is_not_a_mapping(manifest):
    with pytest.raises(AddonInputError) as raised:
        addons.object_entry(manifest)
    assert str(raised.value) == "a desired object must be a mapping, got %r" % (manifest,)


@pytest.mark.parametrize("manifest, missing", [
    ({"kind": "IPAddressPool", "metadata": {"name": "lan-pool"}}, "apiVersion"),
    ({"apiVersion": "v1", "metadata": {"name": "x"}}, "kind"),
    ({"apiVersion": "v1", "kind": "Namespace"}, "metadata.name"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ""}}, "metadata.name"),
    ({"metadata": {}}, "apiVersion, kind, metadata.name"),
])
def test_object_entry_names_what_is_missing(manifest, missing):
    with pytest.raises(AddonInputError) as raised:
        addons.object_entry(manifest)
    assert str(raised.value) == "a desired object lacks %s: %r" % (missing, manifest)


@pytest.mark.parametrize("api_version, kind, name", [
    ("apps/v1", "DaemonSet", "daemonset.apps"),
    ("metallb.io/v1beta1", "IPAddressPool", "ipaddresspool.metallb.io"),
    ("v1", "ConfigMap", "configmap"),
    ("node.k8s.io/v1", "RuntimeClass", "runtimeclass.node.k8s.io"),
    ("projectcalico.org/v3", "IPReservation", "ipreservation.projectcalico.org"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
     "validatingwebhookconfiguration.admissionregistration.k8s.io"),
])
def test_resource_name(api_version, kind, name):
    assert addons.resource_name(api_version, kind) == name


def test_drift_of_a_missing_object():
    assert addons.object_drift(POOL, None) == "missing"


def test_no_drift_when_every_field_set_holds_its_value():
    # The API's defaults (autoAssign), bookkeeping (uid, managedFields, the last-applied annotation) and status are
    # not the manifest's.
    assert addons.object_drift(POOL, live_pool()) is None


def test_drift_names_the_differing_field():
    assert addons.object_drift(POOL, live_pool(addresses=["192.168.86.200-192.168.86.210"])) == (
        "differs at spec.addresses")


def test_name_and_namespace_are_the_lookup_not_compared():
    assert addons.object_drift(POOL, live_pool(name="other", namespace="default")) is None


def test_labels_and_annotations_are_compared_as_a_subset():
    manifest = json.loads(json.dumps(POOL))
    manifest["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "dgx-spark"}
    assert addons.object_drift(manifest, live_pool()) == "differs at metadata.labels"
    assert addons.object_drift(manifest, live_pool(labels={"app.kubernetes.io/managed-by": "helm"})) == (
        "differs at metadata.labels.app.kubernetes.io/managed-by")
    live = live_pool(labels={"app.kubernetes.io/managed-by": "dgx-spark", "team": "lab"})
    assert addons.object_drift(manifest, live) is None


def test_several_differences_are_all_named_in_order():
    manifest = json.loads(json.dumps(POOL))
    manifest["metadata"]["labels"] = {"tier": "lan"}
    manifest["spec"]["autoAssign"] = False
    live = live_pool(addresses=["192.168.86.100/32"], labels={"tier": "fabric"})
    assert addons.object_drift(manifest, live) == "differs at metadata.labels.tier, spec.addresses, spec.autoAssign"


def test_a_live_object_without_the_section_differs_at_the_section():
    live = live_pool()
    del live["spec"]
    assert addons.object_drift(POOL, live) == "differs at spec"


def test_status_in_a_manifest_is_not_compared():
    manifest = dict(POOL, status={"availableIPv4": 99})
    assert addons.object_drift(manifest, live_pool()) is None


def test_drift_of_top_level_fields_and_annotations():
    live = json.loads(json.dumps(RUNTIME_CLASS))
    live["metadata"].update(uid="1", resourceVersion="2")
    assert addons.object_drift(RUNTIME_CLASS, live) is None
    assert addons.object_drift(RUNTIME_CLASS, dict(live, handler="runc")) == "differs at handler"
    wanted = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
              "metadata": {"name": "nfs-csi", "annotations": {"storageclass.kubernetes.io/is-default-class": "false"}},
              "provisioner": "nfs.csi.k8s.io", "parameters": {"server": "10.10.10.1", "share": "/nfs/shared"},
              "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate", "mountOptions": ["nfsvers=4.2"]}
    live = json.loads(json.dumps(wanted))
    live["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] = "true"
    live["parameters"]["share"] = "/nfs/other"
    live["allowVolumeExpansion"] = False
    assert addons.object_drift(wanted, live) == (
        "differs at metadata.annotations.storageclass.kubernetes.io/is-default-class, parameters.share")


# ---------------------------------------------------------------------------------------------------------------
# kube-proxy
# ---------------------------------------------------------------------------------------------------------------

KUBE_PROXY_CONF = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 172.20.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: %(strict)s
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: %(mode)s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForProbes: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
"""


def kube_proxy_configmap(mode='""', strict="false"):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
            "data": {"config.conf": KUBE_PROXY_CONF % {"mode": mode, "strict": strict},
                     "kubeconfig.conf": "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: "
                                        "https://10.10.10.1:6443\n  name: default\n"}}


def test_no_kube_proxy_configmap():
    assert addons.kube_proxy_mode(None) is None


def test_kubeadm_default_mode_is_iptables():
    assert addons.kube_proxy_mode(kube_proxy_configmap()) == {"mode": "iptables", "strict_arp": False}


@pytest.mark.parametrize("mode, strict, expected", [
    ("ipvs", "false", {"mode": "ipvs", "strict_arp": False}),
    ("ipvs", "true", {"mode": "ipvs", "strict_arp": True}),
    ('"ipvs"', "true", {"mode": "ipvs", "strict_arp": True}),
    ("iptables", "true", {"mode": "iptables", "strict_arp": True}),
    ("nftables", "false", {"mode": "nftables", "strict_arp": False}),
])
def test_kube_proxy_modes(mode, strict, expected):
    assert addons.kube_proxy_mode(kube_proxy_configmap(mode, strict)) == expected


def test_short_kube_proxy_configs():
    def conf(text):
        return {"data": {"config.conf": text}}
    assert addons.kube_proxy_mode(conf('mode: ""\n')) == {"mode": "iptables", "strict_arp": False}
    ipvs_off = addons.kube_proxy_mode(conf("mode: ipvs\nipvs:\n  strictARP: false\n"))
    assert ipvs_off == {"mode": "ipvs", "strict_arp": False}
    ipvs_on = addons.kube_proxy_mode(conf("mode: ipvs\nipvs:\n  strictARP: true\n"))
    assert ipvs_on == {"mode": "ipvs", "strict_arp": True}
    # strictARP belongs to the ipvs section only; comments and blank lines are skipped.
    assert addons.kube_proxy_mode(conf("# kube-proxy\n\nmode: ipvs\nother:\n  strictARP: true\nipvs:\n"
                                       "  scheduler: rr\n")) == {"mode": "ipvs", "strict_arp": False}
    assert addons.kube_proxy_mode({"data": {}}) == {"mode": "iptables", "strict_arp": False}
    assert addons.kube_proxy_mode({}) == {"mode": "iptables", "strict_arp": False}


# ---------------------------------------------------------------------------------------------------------------
# judge
# ---------------------------------------------------------------------------------------------------------------

METALLB_RELEASE = {"chart": "metallb", "version": "0.15.2", "values": WANTED_VALUES}
METALLB_READY = [{"kind": "Deployment", "name": "metallb-controller", "namespace": "metallb-system"},
                 {"kind": "DaemonSet", "name": "metallb-speaker", "namespace": "metallb-system"}]


def metallb_found(speaker_ready=2):
    return {("Deployment", "metallb-system", "metallb-controller"): deployment(name="metallb-controller",
                                                                               namespace="metallb-system"),
            ("DaemonSet", "metallb-system", "metallb-speaker"): daemonset(ready=speaker_ready,
                                                                          available=speaker_ready,
                                                                          name="metallb-speaker",
                                                                          namespace="metallb-system")}


def test_judge_a_healthy_addon():
    release = addons.latest_release([helm_secret(revision=2, config=WANTED_VALUES)])
    live = {("IPAddressPool", "metallb-system", "lan-pool"): live_pool(),
            ("L2Advertisement", "metallb-system", "lan-advertisement"): dict(L2, status={})}
    result = addons.judge(METALLB_RELEASE, release, METALLB_READY, metallb_found(), [POOL, L2], live,
                          kube_proxy={"mode": "iptables", "strict_arp": False}, admission="")
    assert result == {
        "install": False, "install_reasons": [],
        "release": {"chart": "metallb", "chart_version": "0.15.2", "status": "deployed", "revision": 2},
        "not_ready": [], "ready": True, "drift": [],
        "kube_proxy": {"mode": "iptables", "strict_arp": False}, "strict_arp_needed": False, "idle": True,
    }


def test_judge_a_fresh_cluster():
    result = addons.judge(METALLB_RELEASE, None, METALLB_READY, {}, [POOL, L2], {})
    assert result == {
        "install": True, "install_reasons": ["the release is not installed"], "release": None,
        "not_ready": ["Deployment metallb-system/metallb-controller: does not exist yet",
                      "DaemonSet metallb-system/metallb-speaker: does not exist yet"],
        "ready": False,
        "drift": [{"index": 0, "kind": "IPAddressPool", "name": "lan-pool", "namespace": "metallb-system",
                   "reason": "missing"},
                  {"index": 1, "kind": "L2Advertisement", "name": "lan-advertisement", "namespace": "metallb-system",
                   "reason": "missing"}],
        "kube_proxy": None, "strict_arp_needed": False, "idle": False,
    }


def test_judge_drift_entries_carry_the_manifest_index():
    live = {("IPAddressPool", "metallb-system", "lan-pool"): live_pool(),
            ("L2Advertisement", "metallb-system", "lan-advertisement"):
                dict(L2, spec={"ipAddressPools": ["lan-pool"], "interfaces": ["enp1s0f1np1"]})}
    result = addons.judge(None, None, [], {}, [POOL, L2], live)
    assert result["drift"] == [{"index": 1, "kind": "L2Advertisement", "name": "lan-advertisement",
                                "namespace": "metallb-system", "reason": "differs at spec.interfaces"}]
    assert (result["install"], result["install_reasons"], result["release"]) == (False, [], None)
    assert result["ready"] and result["idle"] is False  # ready, but a drifted object is work


def test_judge_without_a_release_to_manage_does_not_plan_one():
    result = addons.judge(None, addons.latest_release([helm_secret(revision=1)]), [], {}, [], {})
    assert (result["install"], result["install_reasons"], result["release"]) == (False, [], None)
    assert (result["ready"], result["not_ready"], result["drift"]) == (True, [], [])


def test_judge_a_cluster_scoped_desired_object():
    live = {("RuntimeClass", "", "nvidia"): RUNTIME_CLASS}
    assert addons.judge(None, None, [], {}, [RUNTIME_CLASS], live)["drift"] == []
    assert addons.judge(None, None, [], {}, [dict(RUNTIME_CLASS, handler="nvidia-cdi")], live)["drift"] == [
        {"index": 0, "kind": "RuntimeClass", "name": "nvidia", "namespace": "", "reason": "differs at handler"}]


@pytest.mark.parametrize("kube_proxy, needed", [
    ({"mode": "ipvs", "strict_arp": False}, True),
    ({"mode": "ipvs", "strict_arp": True}, False),
    ({"mode": "iptables", "strict_arp": False}, False),
    ({"mode": "nftables", "strict_arp": False}, False),
    (None, False),
])
def test_judge_strict_arp_needed_only_in_ipvs_without_it(kube_proxy, needed):
    result = addons.judge(None, None, [], {}, [], {}, kube_proxy=kube_proxy)
    assert result["strict_arp_needed"] is needed
    assert result["idle"] is not needed  # nothing else to do here: strictARP alone decides
    assert result["kube_proxy"] == kube_proxy


def test_judge_strict_arp_from_the_configmap():
    mode = addons.kube_proxy_mode(kube_proxy_configmap("ipvs", "false"))
    assert addons.judge(None, None, [], {}, [], {}, kube_proxy=mode)["strict_arp_needed"] is True


def test_judge_admission_refusal_is_not_ready():
    error = ('Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed calling '
             'webhook "ipaddresspoolvalidationwebhook.metallb.io": failed to call webhook: Post '
             '"https://metallb-webhook-service.metallb-system.svc:443/validate-metallb-io-v1beta1-ipaddresspool?'
             'timeout=10s": dial tcp 10.96.12.7:443: connect: connection refused')
    result = addons.judge(METALLB_RELEASE, installed(), METALLB_READY, metallb_found(speaker_ready=1), [POOL],
                          {("IPAddressPool", "metallb-system", "lan-pool"): live_pool()}, admission=error)
    assert result["not_ready"] == [
        "DaemonSet metallb-system/metallb-speaker: 1/2 pods ready",
        "the API does not accept the desired objects yet (server-side dry run): " + error,
    ]
    assert result["ready"] is False
    assert result["install"] is False


def test_judge_admission_alone_makes_it_not_ready():
    result = addons.judge(None, None, [], {}, [], {}, admission="webhook not answering")
    assert result["not_ready"] == ["the API does not accept the desired objects yet (server-side dry run): "
                                   "webhook not answering"]
    assert result["ready"] is False
    for accepted in ("", None):
        assert addons.judge(None, None, [], {}, [], {}, admission=accepted)["ready"] is True


def test_judge_refuses_a_desired_object_it_cannot_name():
    with pytest.raises(AddonInputError):
        addons.judge(None, None, [], {}, [{"kind": "IPAddressPool"}], {})


# ---------------------------------------------------------------------------------------------------------------
# overlapping_cidrs
# ---------------------------------------------------------------------------------------------------------------

def test_the_old_pod_cidr_overlaps_the_lan_and_the_pool():
    assert addons.overlapping_cidrs("192.168.0.0/16", ["192.168.86.0/24", "192.168.86.200-192.168.86.220"]) == [
        "192.168.86.0/24"]


def test_a_pool_range_alone_is_covered_by_the_fewest_cidrs():
    parts = addons.overlapping_cidrs("192.168.0.0/16", ["192.168.86.200-192.168.86.220"])
    assert parts == ["192.168.86.200/29", "192.168.86.208/29", "192.168.86.216/30", "192.168.86.220/32"]
    covered = set(ip for part in parts for ip in ipaddress.ip_network(part))
    wanted = set(ipaddress.ip_address(int(ipaddress.ip_address("192.168.86.200")) + i) for i in range(21))
    assert covered == wanted
    assert parts == [str(net) for net in ipaddress.summarize_address_range(
        ipaddress.ip_address("192.168.86.200"), ipaddress.ip_address("192.168.86.220"))]


@pytest.mark.parametrize("pod, ranges", [
    ("10.244.0.0/16", ["192.168.86.0/24", "192.168.86.200-192.168.86.220"]),
    ("172.20.0.0/16", ["172.21.0.0/16", "172.19.255.0-172.19.255.255"]),
    ("10.244.0.0/16", []),
    ("10.244.0.0/16", None),
    ("10.244.0.0/16", ["fd00::/64"]),
])
def test_networks_apart_from_the_pod_cidr_need_no_reservation(pod, ranges):
    assert addons.overlapping_cidrs(pod, ranges) == []


@pytest.mark.parametrize("pod, ranges", [
    ("192.168.86.0/24", ["192.168.0.0/16"]),
    ("10.244.0.0/16", ["10.0.0.0-10.255.255.255"]),
    ("10.244.0.0/16", ["10.0.0.0/8", "10.244.1.0/24"]),
])
def test_a_range_larger_than_the_pod_cidr_reserves_the_pod_cidr(pod, ranges):
    assert addons.overlapping_cidrs(pod, ranges) == [pod]


def test_only_the_part_of_a_range_inside_the_pod_cidr_is_reserved():
    assert addons.overlapping_cidrs("10.244.0.0/16", ["10.243.255.0-10.244.0.255"]) == ["10.244.0.0/24"]


def test_overlaps_are_collapsed_and_sorted():
    assert addons.overlapping_cidrs("192.168.0.0/16", ["192.168.87.0/25", "192.168.86.128/25", "192.168.87.128/25",
                                                       " 192.168.86.0/25 ", "192.168.86.7"]) == ["192.168.86.0/23"]
    assert addons.overlapping_cidrs("192.168.0.0/16", ["192.168.90.1/24", "192.168.10.0/24"]) == [
        "192.168.10.0/24", "192.168.90.0/24"]
