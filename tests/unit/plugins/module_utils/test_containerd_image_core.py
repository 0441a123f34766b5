"""containerd_image core (pure): references normalised as containerd and the kubelet name them, the parsers of
``ctr images ls -q`` and ``ctr images import`` on captured output (fixtures/ctr), the plan (which images to import
from which archive), the verification after the imports and its messages, the result and the diff."""

import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import containerd_image as core

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
COMFYUI = "localhost/comfyui:v0.9.1-arm64"
DIGEST = "sha256:585093da3a716161ec2b2595011051a90d2f089bc2a25b4a34a18e2cf542527c"


def load(name):
    with open(os.path.join(FIXTURES, "ctr", name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


@pytest.mark.parametrize("given, stored", [
    ("busybox:1", "docker.io/library/busybox:1"),
    ("busybox", "docker.io/library/busybox:latest"),
    ("org/x:1", "docker.io/org/x:1"),
    ("docker.io/busybox:1.28", "docker.io/library/busybox:1.28"),
    ("index.docker.io/library/busybox:1.28", "docker.io/library/busybox:1.28"),
    ("docker.io/library/busybox:1.28", "docker.io/library/busybox:1.28"),
    ("localhost/x:1", "localhost/x:1"),
    (COMFYUI, COMFYUI),
    ("localhost:5000/x:1", "localhost:5000/x:1"),
    ("host:5000/x:1", "host:5000/x:1"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("registry.k8s.io/coredns/coredns:v1.9.3", "registry.k8s.io/coredns/coredns:v1.9.3"),
    ("nvcr.io/nvidia/pytorch:25.01-py3", "nvcr.io/nvidia/pytorch:25.01-py3"),
    ("Example/x:1", "Example/x:1"),  # a first component with capitals is a registry host, as distribution reads it
    ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST),
    ("busybox:1.28@" + DIGEST, "docker.io/library/busybox@" + DIGEST),
    ("localhost/x@" + DIGEST, "localhost/x@" + DIGEST),
    (DIGEST, DIGEST),  # an image id, listed by ctr -n k8s.io images ls -q
    ("  busybox:1  ", "docker.io/library/busybox:1"),
    ("my_org/x:1", "docker.io/my_org/x:1"),  # an underscore separates path components
])
def test_references_are_normalised_as_containerd_stores_them(given, stored):
    assert core.normalise(given) == stored


@pytest.mark.parametrize("given, why", [
    ("", "is not an image reference"),
    ("busy box:1", "is not an image reference"),
    ("localhost/ComfyUI:1", "must be lowercase"),
    ("org/x:bad/tag", "must be lowercase"),
    ("busybox:-1", "is not a tag"),
    ("busybox@sha256:xyz", "is not a digest"),
    ("bad_host.io/x:1", "is not a registry host"),
])
def test_bad_references_are_refused_naming_the_reference(given, why):
    with pytest.raises(core.ImageReferenceError) as caught:
        core.normalise(given)
    assert why in str(caught.value) and repr(given) in str(caught.value)


def test_the_names_of_a_real_k8s_io_listing_are_already_normalised():
    listed = core.parse_images_ls(load("images-ls-q-kind-node-image-k8s-io.txt"))
    assert len(listed) == 20 and listed[0] == "docker.io/kindest/kindnetd:v20211122-a2c10462"
    assert listed[-1] == "sha256:e767a71db6387bd20f674911160ae2fd3aa454d850d3fb1c0fa8bcb44f942537"
    assert [core.normalise(ref) for ref in listed] == listed


def test_a_listing_is_looked_up_by_the_name_a_pod_spec_uses():
    listed = core.parse_images_ls(load("images-ls-q-kind-node-image-k8s-io.txt"))
    wanted = core.check_images([{"name": "kindest/kindnetd:v20211122-a2c10462"}, {"name": "registry.k8s.io/pause:3.6"},
                                {"name": "k8s.gcr.io/pause:3.6"}, {"name": "rancher/local-path-provisioner:v0.0.14"}])
    planned = core.plan(wanted, listed)
    assert planned["present"] == ["kindest/kindnetd:v20211122-a2c10462", "k8s.gcr.io/pause:3.6",
                                  "rancher/local-path-provisioner:v0.0.14"]
    assert planned["missing"] == ["registry.k8s.io/pause:3.6"] and planned["unresolved"] == planned["missing"]
    assert planned["imports"] == []


def test_an_image_id_in_the_listing_is_not_a_name():
    listed = core.parse_images_ls(load("images-ls-q-kind-node-image-k8s-io.txt"))
    assert not core.holds(listed, core.normalise("sha256:2a2fd040c30da1fa7d5f115701fdd98180b585ed5fb40f126a3ba9f7"
                                                 "3e7588e8"))
    assert core.holds(listed, "sha256:2a2fd040c30da1fa7d5f115701fdd98180b585ed5fb40f126a3ba9f73e7588e7")


@pytest.mark.parametrize("fixture, names", [
    ("import-busybox-1.28.txt", ["docker.io/library/busybox:1.28"]),
    ("import-docker-save-kpimon-go.txt", ["docker.io/library/kpimon-go:local"]),
    ("import-docker-save-oc-nginx.txt", ["docker.io/library/oc.nginx:acme"]),
    ("import-oci-index-name-wasm.txt", ["docker.io/library/moscow-time-wasm:latest"]),
    ("import-transfer-weaviate.txt", ["cr.weaviate.io/semitechnologies/weaviate"]),
])
def test_import_output_names_what_it_imported(fixture, names):
    assert core.parse_import_output(load(fixture)) == names


def test_docker_save_of_a_short_name_is_found_under_the_short_name():
    # docker save kpimon-go:local, imported: containerd stores docker.io/library/kpimon-go:local, which is the name
    # a Pod spec saying kpimon-go:local asks for.
    stored = core.parse_import_output(load("import-docker-save-kpimon-go.txt"))
    assert core.holds(stored, core.normalise("kpimon-go:local"))
    assert not core.holds(stored, core.normalise("localhost/kpimon-go:local"))


def test_argv_lists_and_imports_without_all_platforms():
    assert core.list_argv("/usr/bin/ctr", "/run/containerd/containerd.sock", "k8s.io") == [
        "/usr/bin/ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images", "ls", "-q"]
    argv = core.import_argv("/usr/bin/ctr", "/run/containerd/containerd.sock", "k8s.io", "/var/tmp/i/comfyui.tar")
    assert argv == ["/usr/bin/ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images",
                    "import", "/var/tmp/i/comfyui.tar"]
    assert not [arg for arg in argv if arg in ("--all-platforms", "--no-unpack", "--digests")]


def test_check_images_names_every_bad_entry_and_drops_duplicates():
    with pytest.raises(core.ImageReferenceError) as caught:
        core.check_images([{"name": "ok:1"}, {"name": "Bad/Name:1"}, {"name": ""}])
    assert str(caught.value).startswith("images[1].name: 'Bad/Name:1'") and "images[2].name: '' is not" in \
        str(caught.value)
    wanted = core.check_images([{"name": "busybox:1"}, {"name": "docker.io/library/busybox:1", "archive": "/a.tar"}])
    assert wanted == [{"name": "busybox:1", "ref": "docker.io/library/busybox:1", "archive": None}]


def test_plan_groups_the_missing_images_by_archive_and_reports_those_without_one():
    listed = core.parse_images_ls(load("images-ls-q-default-busybox-tomcat.txt"))
    wanted = core.check_images([
        {"name": "busybox:1.28", "archive": "/var/tmp/i/busybox.tar"},
        {"name": COMFYUI, "archive": "/var/tmp/i/comfyui.tar"},
        {"name": "localhost/comfyui-manager:v1", "archive": "/var/tmp/i/comfyui.tar"},
        {"name": "localhost/vllm:v1"},
    ])
    planned = core.plan(wanted, listed)
    assert planned["present"] == ["busybox:1.28"]
    assert planned["missing"] == [COMFYUI, "localhost/comfyui-manager:v1", "localhost/vllm:v1"]
    assert planned["imports"] == [{"archive": "/var/tmp/i/comfyui.tar",
                                   "names": [COMFYUI, "localhost/comfyui-manager:v1"],
                                   "refs": [COMFYUI, "localhost/comfyui-manager:v1"]}]
    assert planned["unresolved"] == ["localhost/vllm:v1"]
    assert core.actions(planned) == ["import %s, localhost/comfyui-manager:v1 from /var/tmp/i/comfyui.tar" % COMFYUI]


def test_nothing_to_do_when_everything_is_present():
    listed = core.parse_images_ls(load("images-ls-q-default-busybox-tomcat.txt"))
    wanted = core.check_images([{"name": "busybox:1.28", "archive": "/x.tar"}, {"name": "tomcat:8.5-jre8-alpine"}])
    planned = core.plan(wanted, listed)
    assert planned["imports"] == [] and planned["missing"] == []
    assert core.result(wanted, planned)["changed"] is False
    assert core.result(wanted, planned, check_mode=True)["changed"] is False


def test_verify_passes_when_the_import_added_the_wanted_name():
    before = core.parse_images_ls("docker.io/library/tomcat:8.5-jre8-alpine\n")
    after = before + core.parse_import_output(load("import-docker-save-oc-nginx.txt"))
    wanted = core.check_images([{"name": "oc.nginx:acme", "archive": "/var/tmp/i/oc.nginx.acme"}])
    planned = core.plan(wanted, before)
    assert core.verify(planned, [before, after], {}, "k8s.io") == []
    done = core.result(wanted, planned, after=after, imported=["oc.nginx:acme"],
                       added=core.added_names(before, after))
    assert done["changed"] is True and done["present"] == ["oc.nginx:acme"] and done["missing"] == []
    assert done["added"] == ["docker.io/library/oc.nginx:acme"]
    assert done["references"] == {"oc.nginx:acme": "docker.io/library/oc.nginx:acme"}


def test_verify_names_the_image_the_archive_and_what_it_added_instead():
    # The archive was saved from the short name kpimon-go:local, the catalogue asks for localhost/kpimon-go:local.
    before = ["docker.io/library/tomcat:8.5-jre8-alpine"]
    reported = core.parse_import_output(load("import-docker-save-kpimon-go.txt"))
    after = before + reported
    wanted = core.check_images([{"name": "localhost/kpimon-go:local", "archive": "/var/tmp/i/kpimon-go.tar"}])
    planned = core.plan(wanted, before)
    failures = core.verify(planned, [before, after], {"/var/tmp/i/kpimon-go.tar": reported}, "k8s.io")
    assert failures == [
        "localhost/kpimon-go:local (containerd names it localhost/kpimon-go:local) is still missing from containerd "
        "(namespace k8s.io) after importing /var/tmp/i/kpimon-go.tar: it added docker.io/library/kpimon-go:local "
        "(ctr reported docker.io/library/kpimon-go:local). The archive must hold the image under that name (saved "
        "with podman save or docker save of that exact name and tag)"]


def test_verify_says_when_the_archive_added_nothing_new():
    before = core.parse_images_ls(load("images-ls-q-default-busybox-tomcat.txt"))
    reported = core.parse_import_output(load("import-busybox-1.28.txt"))
    wanted = core.check_images([{"name": "busybox:1.36", "archive": "/var/tmp/i/busybox.tar"}])
    planned = core.plan(wanted, before)
    failures = core.verify(planned, [before, before], {"/var/tmp/i/busybox.tar": reported}, "k8s.io")
    assert len(failures) == 1
    assert "after importing /var/tmp/i/busybox.tar: it added no new name (ctr reported " \
           "docker.io/library/busybox:1.28)" in failures[0]


def test_verify_attributes_the_added_names_to_each_archive():
    before = []
    after_first = ["docker.io/library/busybox:1.28"]
    after_second = after_first + ["localhost/other:1"]
    wanted = core.check_images([{"name": "busybox:1.28", "archive": "/a.tar"}, {"name": COMFYUI, "archive": "/b.tar"}])
    planned = core.plan(wanted, before)
    failures = core.verify(planned, [before, after_first, after_second], {}, "k8s.io")
    assert len(failures) == 1 and failures[0].startswith(COMFYUI) and "importing /b.tar: it added localhost/other:1." \
        in failures[0]


def test_an_archive_for_another_platform_is_explained():
    # containerd's ErrEmptyWalk, which ctr prints when the archive holds no image for the default platform.
    group = {"archive": "/var/tmp/i/comfyui.tar", "names": [COMFYUI], "refs": [COMFYUI]}
    message = core.import_failed_message(group, "k8s.io", "ctr: image might be filtered out\n")
    assert message.startswith("importing %s into containerd (namespace k8s.io) failed: ctr images import "
                              "/var/tmp/i/comfyui.tar" % COMFYUI)
    assert "no image for this node's platform" in message
    assert "platform" not in core.import_failed_message(group, "k8s.io", "ctr: unexpected EOF\n")
    assert core.archive_missing_message(group) == (
        COMFYUI + ": the archive /var/tmp/i/comfyui.tar to import it from does not exist on this node (copy it here "
        "first)")


def test_check_mode_result_and_diff_say_what_would_be_imported():
    wanted = core.check_images([{"name": "busybox:1.28"}, {"name": COMFYUI, "archive": "/var/tmp/i/comfyui.tar"},
                                {"name": "localhost/vllm:v1"}])
    planned = core.plan(wanted, ["docker.io/library/busybox:1.28"])
    res = core.result(wanted, planned, check_mode=True)
    assert res["changed"] is True and res["imported"] == [COMFYUI] and res["added"] == []
    assert res["present"] == ["busybox:1.28"] and res["missing"] == [COMFYUI, "localhost/vllm:v1"]
    assert core.diff(wanted, planned) == {
        "before": "busybox:1.28: present\n%s: missing\nlocalhost/vllm:v1: missing\n" % COMFYUI,
        "after": "busybox:1.28: present\n%s: imported from /var/tmp/i/comfyui.tar\nlocalhost/vllm:v1: missing\n"
                 % COMFYUI}
