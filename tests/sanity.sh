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
(cd "$REPO" && git ls-files -co --exclude-standard -z | grep -z -v -E '^(collections/ansible_collections/|\.lab/)' \
    | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"') > "$base/files"
rsync -a --delete --from0 --files-from="$base/files" --exclude tests/output "$REPO/" "$dest/"
cd "$dest"
"$REPO/.venv/bin/ansible-test" sanity --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --venv --color no "$@"
