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
