#!/usr/bin/env bash
# ansible-test sanity on a copy of the tracked files in an ansible_collections/dgx_spark/cluster tree
# (ansible-test refuses a path without that parent, and a link to the repo does not satisfy it).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A persistent copy so that ansible-test's sanity venvs are reused between runs.
# Outside the repo: inside it, ansible-test would ask git for the file list and find them ignored.
base=${SANITY_WORK_DIR:-/var/tmp/dgx-spark-sanity-$(printf %s "$REPO" | sha256sum | cut -c1-8)}
dest=$base/ansible_collections/dgx_spark/cluster
mkdir -p "$dest"
# Tracked and new (not ignored) files, without the collections/ link back to the repo and without the lab.
(cd "$REPO" && git ls-files -co --exclude-standard -z) | python3 -c '
import os, sys
names = sys.stdin.buffer.read().split(b"\0")
keep = [n for n in names if n and os.path.lexists(n) and not n.startswith((b"collections/ansible_collections/", b".lab/"))]
sys.stdout.buffer.write(b"\0".join(keep) + b"\0")' > "$base/files"
(cd "$REPO" && rsync -a --delete --from0 --files-from="$base/files" --exclude tests/output ./ "$dest/")
# rsync --files-from never deletes: remove what the list no longer holds (a renamed or deleted file), so the copy
# is exactly the checkout.
python3 - "$base/files" "$dest" <<'PY'
import os, sys
keep = set(name.decode() for name in open(sys.argv[1], "rb").read().split(b"\0") if name)
for root, dirs, files in os.walk(sys.argv[2]):
    rel_root = os.path.relpath(root, sys.argv[2])
    if rel_root == "tests/output" or rel_root.startswith("tests/output/"):
        continue
    for name in files:
        rel = os.path.normpath(os.path.join(rel_root, name))
        if rel not in keep:
            os.remove(os.path.join(root, name))
PY
# ansible-test downloads a pip bootstrap script from a host this machine cannot reach; it looks in
# ~/.ansible/test/cache first. It runs with a home of its own inside the work directory, so nothing of the
# user's $HOME is read or written: put there a few lines that install pip from a wheel fetched through the index.
export HOME=$base/home
cache=$HOME/.ansible/test/cache
bootstrap=$cache/get_pip_24_2.py
if [ ! -f "$bootstrap" ]; then
    mkdir -p "$cache"
    "$REPO/.venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$cache" pip==24.2
    cat > "$bootstrap" <<'PY'
# Offline stand-in for ansible-test's pip bootstrap: installs pip from the cached wheel beside it.
import glob
import os
import sys

wheel = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-24.2-*.whl"))[0]
sys.path.insert(0, wheel)
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--disable-pip-version-check", wheel] + args))
PY
fi
cd "$dest"
"$REPO/.venv/bin/ansible-test" sanity --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --venv --color no "$@"
