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
cd "$dest"
"$REPO/.venv/bin/ansible-test" sanity --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --venv --color no "$@"
