"""What the module tests share: fixture loading without provenance headers, and the exceptions that stand
for AnsibleModule.exit_json / fail_json when a test runs a module's main() in-process."""

import os

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")


def load(tool, name):
    """A fixture's text without its '#@ ' provenance lines."""
    with open(os.path.join(FIXTURES, tool, name)) as handle:
        return "".join(line for line in handle if not line.startswith("#@ "))


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


def patch_exits(monkeypatch, warnings):
    """Make AnsibleModule's exit_json/fail_json raise (fail_json adds failed=True) and collect its warnings."""
    from ansible.module_utils import basic

    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))


def patch_run_command(monkeypatch, respond):
    """Make AnsibleModule.run_command answer from ``respond(argv)``, with the ``timeout <seconds> <signal>``
    wrapper the modules put in front removed; returns the list the argvs are recorded in."""
    from ansible.module_utils import basic

    calls = []

    def run_command(self, argv, data=None, **kwargs):
        argv = list(argv)
        if os.path.basename(argv[0]) == "timeout":
            argv = argv[3:]
        calls.append(argv)
        return respond(argv)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return calls


def patch_bin_path(monkeypatch, found):
    """Make AnsibleModule.get_bin_path find ``found`` (names, plus ``timeout``) under /usr/bin and nothing else: a
    required binary that is missing fails the module as the real one does."""
    from ansible.module_utils import basic

    def get_bin_path(self, name, required=False, opt_dirs=None):
        if name in found or name == "timeout":
            return "/usr/bin/" + name
        if required:
            self.fail_json(msg="no %s" % name)
        return None

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
