"""containerd_image module: main() with a patched AnsibleModule and a containerd that answers ``ctr images ls -q``
from its list of names and ``ctr images import`` with the captured output of fixtures/ctr, adding the names the
archive holds. Archives are files in a temporary directory. Check mode imports nothing; a second run changes
nothing; every failure names the image and the archive."""

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.modules import containerd_image
from module_harness import ExitJson, FailJson, load, patch_bin_path, patch_exits, patch_run_command  # noqa: E402  (sibling helper)

SOCKET = "/run/containerd/containerd.sock"
COMFYUI = "localhost/comfyui:v0.9.1-arm64"


class Containerd(object):
    """One namespace's image names; ``archives``: archive path -> (names it adds, stdout, stderr, rc)."""

    def __init__(self, names=(), archives=None, up=True):
        self.names = list(names)
        self.archives = archives or {}
        self.up = up

    def respond(self, argv):
        assert argv[:5] == ["/usr/bin/ctr", "--address", SOCKET, "-n", "k8s.io"], argv
        if not self.up:
            return 1, "", ("ctr: failed to dial \"%s\": connection error: desc = \"transport: error while dialing: "
                           "dial unix %s: connect: no such file or directory\"\n" % (SOCKET, SOCKET))
        if argv[5:] == ["images", "ls", "-q"]:
            return 0, "".join(name + "\n" for name in self.names), ""
        if argv[5:7] == ["images", "import"] and len(argv) == 8:
            adds, out, err, rc = self.archives[argv[7]]
            if rc == 0:
                self.names.extend(name for name in adds if name not in self.names)
            return rc, out, err
        raise AssertionError("unexpected command %s" % argv)


def archive(tmp_path, name="comfyui.tar"):
    path = tmp_path / name
    path.write_bytes(b"an image archive\n")
    return str(path)


def run(monkeypatch, containerd, check_mode=False, diff=False, **args):
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    warnings = []
    patch_exits(monkeypatch, warnings)
    calls = patch_run_command(monkeypatch, containerd.respond)
    patch_bin_path(monkeypatch, ("ctr",))
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            containerd_image.main()
    assert warnings == []
    return caught.value.args[0], calls


def imports(calls):
    return [c for c in calls if c[5:7] == ["images", "import"]]


def test_names_only_lists_once_and_reports_present_and_missing(monkeypatch):
    node = Containerd(names=["docker.io/library/busybox:1.28", "docker.io/library/tomcat:8.5-jre8-alpine"])
    result, calls = run(monkeypatch, node, images=[{"name": "busybox:1.28"}, {"name": COMFYUI}])
    assert result["changed"] is False and result["present"] == ["busybox:1.28"] and result["missing"] == [COMFYUI]
    assert calls == [["/usr/bin/ctr", "--address", SOCKET, "-n", "k8s.io", "images", "ls", "-q"]]
    assert result["references"] == {"busybox:1.28": "docker.io/library/busybox:1.28", COMFYUI: COMFYUI}


def test_missing_image_imported_from_its_archive_then_a_second_run_changes_nothing(tmp_path, monkeypatch):
    path = archive(tmp_path)
    out = "unpacking %s (sha256:%s)...done\n" % (COMFYUI, "6f" * 32)
    node = Containerd(names=["docker.io/library/busybox:1.28"], archives={path: ([COMFYUI], out, "", 0)})
    args = dict(images=[{"name": COMFYUI, "archive": path}])
    result, calls = run(monkeypatch, node, diff=True, **args)
    assert result["changed"] is True and result["imported"] == [COMFYUI] and result["added"] == [COMFYUI]
    assert result["present"] == [COMFYUI] and result["missing"] == []
    assert [c[5:] for c in calls] == [["images", "ls", "-q"], ["images", "import", path], ["images", "ls", "-q"]]
    assert result["diff"]["after"] == "%s: imported from %s\n" % (COMFYUI, path)
    again, calls = run(monkeypatch, node, **args)
    assert again["changed"] is False and again["imported"] == [] and imports(calls) == []


def test_check_mode_lists_and_imports_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "not-copied-yet.tar")  # in check mode the copy before it did not happen either
    node = Containerd(archives={path: ([COMFYUI], "", "", 0)})
    result, calls = run(monkeypatch, node, check_mode=True, diff=True, images=[{"name": COMFYUI, "archive": path}])
    assert result["changed"] is True and result["imported"] == [COMFYUI] and result["missing"] == [COMFYUI]
    assert imports(calls) == [] and node.names == []
    assert result["diff"] == {"before": COMFYUI + ": missing\n", "after": "%s: imported from %s\n" % (COMFYUI, path)}


def test_missing_image_without_archive_is_reported_not_failed(monkeypatch):
    result, calls = run(monkeypatch, Containerd(), images=[{"name": COMFYUI}])
    assert "failed" not in result and result["changed"] is False and result["missing"] == [COMFYUI]


def test_archive_absent_on_the_node_fails_before_any_import(tmp_path, monkeypatch):
    path = str(tmp_path / "comfyui.tar")
    node = Containerd(archives={path: ([COMFYUI], "", "", 0)})
    result, calls = run(monkeypatch, node, images=[{"name": COMFYUI, "archive": path}])
    assert result["failed"] is True and imports(calls) == []
    assert result["msg"] == "%s: the archive %s to import it from does not exist on this node (copy it here first)" % (
        COMFYUI, path)


def test_archive_holding_another_name_fails_naming_what_it_added(tmp_path, monkeypatch):
    # docker save kpimon-go:local (fixtures/ctr): stored as docker.io/library/kpimon-go:local, not the wanted name.
    path = archive(tmp_path, "kpimon-go.tar")
    out = load("ctr", "import-docker-save-kpimon-go.txt")
    node = Containerd(archives={path: (["docker.io/library/kpimon-go:local"], out, "", 0)})
    result, calls = run(monkeypatch, node, images=[{"name": "localhost/kpimon-go:local", "archive": path}])
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith("localhost/kpimon-go:local (containerd names it localhost/kpimon-go:local) is "
                                    "still missing from containerd (namespace k8s.io) after importing %s: it added "
                                    "docker.io/library/kpimon-go:local (ctr reported "
                                    "docker.io/library/kpimon-go:local)." % path)
    assert result["added"] == ["docker.io/library/kpimon-go:local"]


def test_a_short_name_is_found_under_the_name_containerd_stores(tmp_path, monkeypatch):
    path = archive(tmp_path, "oc.nginx.acme")
    out = load("ctr", "import-docker-save-oc-nginx.txt")
    node = Containerd(archives={path: (["docker.io/library/oc.nginx:acme"], out, "", 0)})
    result, unused = run(monkeypatch, node, images=[{"name": "oc.nginx:acme", "archive": path}])
    assert result["changed"] is True and result["present"] == ["oc.nginx:acme"]
    again, calls = run(monkeypatch, node, images=[{"name": "oc.nginx:acme", "archive": path}])
    assert again["changed"] is False and imports(calls) == []


def test_one_archive_holding_two_images_is_imported_once(tmp_path, monkeypatch):
    path = archive(tmp_path)
    names = [COMFYUI, "localhost/comfyui-manager:v0.9.1-arm64"]
    node = Containerd(archives={path: (names, "", "", 0)})
    result, calls = run(monkeypatch, node, images=[{"name": name, "archive": path} for name in names])
    assert len(imports(calls)) == 1 and result["imported"] == names and result["present"] == names


def test_import_for_another_platform_fails_with_ctr_output(tmp_path, monkeypatch):
    path = archive(tmp_path)
    node = Containerd(archives={path: ([], "", "ctr: image might be filtered out\n", 1)})
    result, unused = run(monkeypatch, node, images=[{"name": COMFYUI, "archive": path}])
    assert result["failed"] is True and result["rc"] == 1 and result["changed"] is False
    assert result["msg"].startswith("importing %s into containerd (namespace k8s.io) failed" % COMFYUI)
    assert "no image for this node's platform" in result["msg"]
    assert result["cmd"].endswith("ctr --address %s -n k8s.io images import %s" % (SOCKET, path))
    assert result["stderr"] == "ctr: image might be filtered out\n"


def test_containerd_down_fails_naming_the_socket(monkeypatch):
    result, unused = run(monkeypatch, Containerd(up=False), images=[{"name": COMFYUI}])
    assert result["failed"] is True
    assert result["msg"] == "ctr could not list the images of containerd at %s (is containerd running?)" % SOCKET
    assert "connect: no such file or directory" in result["stderr"]


def test_bad_reference_fails_before_any_command(monkeypatch):
    result, calls = run(monkeypatch, Containerd(), images=[{"name": "localhost/ComfyUI:v1"}])
    assert result["failed"] is True and calls == [] and result["msg"].startswith("images[0].name: 'localhost/ComfyUI:v1'")


def test_the_import_runs_under_import_timeout(tmp_path, monkeypatch):
    path = archive(tmp_path)
    node = Containerd(archives={path: ([COMFYUI], "", "", 0)})
    wrapped = []
    run(monkeypatch, node, images=[{"name": COMFYUI, "archive": path}], import_timeout=600)  # patches the exits
    original = basic.AnsibleModule.run_command

    def run_command(self, argv, data=None, **kwargs):
        wrapped.append(list(argv))
        return original(self, argv, data=data, **kwargs)

    node.names = []
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    with patch_module_args(dict(images=[{"name": COMFYUI, "archive": path}], import_timeout=600)):
        with pytest.raises(ExitJson):
            containerd_image.main()
    limits = [argv[:3] for argv in wrapped]
    assert limits == [["/usr/bin/timeout", "--kill-after=5", "60"], ["/usr/bin/timeout", "--kill-after=5", "600"],
                      ["/usr/bin/timeout", "--kill-after=5", "60"]]
