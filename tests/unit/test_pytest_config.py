"""A bare `pytest` at the repository root collects our tests once each, and nothing else."""

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_bare_pytest_collects_only_the_test_tree_without_errors():
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=REPO,
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    items = [line for line in result.stdout.splitlines() if "::" in line]
    assert items, result.stdout[-2000:]
    outside = [item for item in items if not item.startswith(("tests/unit/", "tests/playbooks/"))]
    assert outside == []
    # Every test directory is reached (a norecursedirs pattern matches any directory of that name).
    for directory in ("tests/unit/plugins/modules/", "tests/unit/plugins/module_utils/", "tests/unit/lab/",
                      "tests/playbooks/"):
        assert any(item.startswith(directory) for item in items), directory
    # Each test once: the collections/ link would have added every test again under another path.
    assert len(items) == len(set(items))
    assert not any(item.startswith("collections/") or "/plugins/modules/nccl_test.py" in item for item in items)
