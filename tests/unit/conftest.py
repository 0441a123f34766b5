"""Make ``ansible_collections.dgx_spark.cluster`` importable from a plain checkout.

The repository root is the collection root, and collections/ansible_collections/dgx_spark/cluster
is a committed link to it, so putting ``collections/`` on sys.path is enough for plain pytest.
Under ansible-test the collection already sits in an ansible_collections tree and this is a no-op.
"""

import os
import sys

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_COLLECTIONS = os.path.join(_REPO, "collections")
if os.path.isdir(os.path.join(_COLLECTIONS, "ansible_collections")) and _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def pytest_configure(config):
    config.addinivalue_line("markers", "netns: runs the real module in network namespaces it creates (needs root)")
