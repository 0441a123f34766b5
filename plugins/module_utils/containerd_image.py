# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core of the ``containerd_image`` module: images a node's containerd lacks, imported from archives.

Pure: the normalising of image references the way containerd and the kubelet name them, parsers of
``ctr images ls -q`` and ``ctr images import`` output, the plan (which wanted images are present, which missing,
which archives to import), the verification after the imports, the messages and the module's result. No Ansible
imports and no I/O: the module runs ``ctr`` and hands the output here; the tests drive this file with plain data.

Names, as containerd's CRI plugin resolves the image a Pod asks for (distribution's ParseDockerRef):

* ``busybox:1`` is ``docker.io/library/busybox:1``, ``org/x:1`` is ``docker.io/org/x:1``, ``index.docker.io/...``
  is ``docker.io/...``;
* a first component with a ``.`` or a ``:`` or equal to ``localhost`` is a registry host: ``localhost/x:1`` and
  ``host:5000/x:1`` stay as they are;
* no tag and no digest means ``:latest``; a digest is kept, and a tag beside a digest is dropped (the digest names
  the image);
* an image id (``sha256:<64 hex>``, which ``ctr -n k8s.io images ls -q`` lists beside the names) stays as it is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

DEFAULT_NAMESPACE = "k8s.io"
DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
DEFAULT_IMPORT_TIMEOUT = 1800

DOCKER_DOMAIN = "docker.io"
LEGACY_DOCKER_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"

IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-f]{32,}$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DOMAIN_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                       r"(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$")
PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
# ctr images import (local import, containerd 1.x): one line per image it unpacks.
UNPACKING_RE = re.compile(r"unpacking (\S+) \(([a-z0-9]+:[0-9a-f]+)\)\.\.\.")
# ctr images import through the transfer service (containerd 2.x): "<name>   saved" progress lines.
SAVED_RE = re.compile(r"^\s*(\S+)\s+saved\s*$")
FILTERED_OUT = "image might be filtered out"


class ImageReferenceError(ValueError):
    """An image reference that containerd could not name; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# names (pure)
# ---------------------------------------------------------------------------------------------

def split_domain(name):
    """``name`` (no tag, no digest) -> (domain, path), distribution's splitDockerDomain."""
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash < 0 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, path = DOCKER_DOMAIN, name
    else:
        domain, path = first, name[slash + 1:]
    if domain == LEGACY_DOCKER_DOMAIN:
        domain = DOCKER_DOMAIN
    if domain == DOCKER_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def normalise(reference):
    """The name containerd stores (and the kubelet asks for) for an image reference; ImageReferenceError when it
    is not a valid reference."""
    ref = (reference or "").strip()
    if not ref or any(c.isspace() for c in ref):
        raise ImageReferenceError("%r is not an image reference" % (reference,))
    if IMAGE_ID_RE.match(ref):
        return ref
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise ImageReferenceError("%r: %r is not a digest" % (reference, digest))
    tag = None
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        ref, tag = ref[:colon], ref[colon + 1:]
        if not TAG_RE.match(tag):
            raise ImageReferenceError("%r: %r is not a tag" % (reference, tag))
    domain, path = split_domain(ref)
    if not DOMAIN_RE.match(domain):
        raise ImageReferenceError("%r: %r is not a registry host" % (reference, domain))
    bad = [part for part in path.split("/") if not PATH_COMPONENT_RE.match(part)]
    if bad:
        raise ImageReferenceError("%r: the repository %r must be lowercase letters, digits and separators (%s)"
                                  % (reference, path, ", ".join(repr(part) for part in bad)))
    name = "%s/%s" % (domain, path)
    if digest:
        return "%s@%s" % (name, digest)
    return "%s:%s" % (name, tag or "latest")


def normalise_or_same(reference):
    """normalise() for a name containerd listed; one it cannot parse is kept as listed."""
    try:
        return normalise(reference)
    except ImageReferenceError:
        return reference


# ---------------------------------------------------------------------------------------------
# parsers (pure)
# ---------------------------------------------------------------------------------------------

def parse_images_ls(text):
    """``ctr images ls -q`` -> the listed references, in order (names, digests and image ids alike)."""
    refs = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line and line not in refs:
            refs.append(line)
    return refs


def parse_import_output(text):
    """``ctr images import`` stdout -> the names it reports: containerd 1.x prints ``unpacking <name> (<digest>)...done``
    for each image it unpacks, containerd 2.x's transfer service ``<name>   saved``."""
    names = []
    for line in (text or "").splitlines():
        found = [m.group(1) for m in UNPACKING_RE.finditer(line)]
        saved = SAVED_RE.match(line)
        if saved:
            found.append(saved.group(1))
        for name in found:
            if name not in names:
                names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# argv (pure)
# ---------------------------------------------------------------------------------------------

def list_argv(ctr, address, namespace):
    return [ctr, "--address", address, "-n", namespace, "images", "ls", "-q"]


def import_argv(ctr, address, namespace, archive):
    """Neither --all-platforms nor --no-unpack: the archive's image for this node's platform is imported and
    unpacked for the default snapshotter, which is what the kubelet's containers start from."""
    return [ctr, "--address", address, "-n", namespace, "images", "import", archive]


# ---------------------------------------------------------------------------------------------
# plan (pure)
# ---------------------------------------------------------------------------------------------

def check_images(images):
    """The module's ``images`` -> [{name, ref, archive}] (ref: the normalised name); ImageReferenceError naming
    every bad entry."""
    wanted, problems = [], []
    for index, image in enumerate(images or []):
        name = (image.get("name") or "").strip()
        try:
            ref = normalise(name)
        except ImageReferenceError as exc:
            problems.append("images[%d].name: %s" % (index, exc))
            continue
        if any(w["ref"] == ref for w in wanted):
            continue
        wanted.append({"name": name, "ref": ref, "archive": image.get("archive") or None})
    if problems:
        raise ImageReferenceError("; ".join(problems))
    return wanted


def holds(listing, ref):
    """Whether containerd's listing holds the (normalised) reference."""
    return ref in listing or any(normalise_or_same(listed) == ref for listed in listing)


def plan(wanted, listing):
    """-> {present, missing (names), imports: [{archive, names, refs}] (one per archive, in order), unresolved
    (missing names without an archive: reported, never a failure here)}."""
    present = [w["name"] for w in wanted if holds(listing, w["ref"])]
    missing = [w for w in wanted if w["name"] not in present]
    imports = []
    for w in missing:
        if not w["archive"]:
            continue
        group = next((i for i in imports if i["archive"] == w["archive"]), None)
        if group is None:
            group = {"archive": w["archive"], "names": [], "refs": []}
            imports.append(group)
        group["names"].append(w["name"])
        group["refs"].append(w["ref"])
    return {"present": present, "missing": [w["name"] for w in missing], "imports": imports,
            "unresolved": [w["name"] for w in missing if not w["archive"]]}


def actions(planned):
    return ["import %s from %s" % (", ".join(group["names"]), group["archive"]) for group in planned["imports"]]


# ---------------------------------------------------------------------------------------------
# messages (pure)
# ---------------------------------------------------------------------------------------------

def archive_missing_message(group):
    return ("%s: the archive %s to import it from does not exist on this node (copy it here first)"
            % (", ".join(group["names"]), group["archive"]))


def import_failed_message(group, namespace, stderr):
    message = "importing %s into containerd (namespace %s) failed: ctr images import %s" % (
        ", ".join(group["names"]), namespace, group["archive"])
    if FILTERED_OUT in (stderr or ""):
        message += (" found no image for this node's platform in the archive (an image built for another "
                    "architecture? the nodes are linux/arm64)")
    return message


def added_names(before, after):
    """The references the imports added: listed after, not before (in the order listed)."""
    return [ref for ref in after if ref not in before]


def verify(planned, listings, outputs, namespace):
    """After the imports: the failures, one message per wanted image still missing, naming the image, its archive
    and the names that archive did add. ``listings``: containerd's listing before the first import, then after
    each import (in the order of ``planned["imports"]``); ``outputs``: archive -> the names its import reported."""
    final = listings[-1]
    failures = []
    for index, group in enumerate(planned["imports"]):
        added = added_names(listings[index], listings[index + 1])
        reported = outputs.get(group["archive"]) or []
        for name, ref in zip(group["names"], group["refs"]):
            if holds(final, ref):
                continue
            what = "it added %s" % ", ".join(added) if added else "it added no new name"
            if reported:
                what += " (ctr reported %s)" % ", ".join(reported)
            failures.append("%s (containerd names it %s) is still missing from containerd (namespace %s) after "
                            "importing %s: %s. The archive must hold the image under that name (saved with podman "
                            "save or docker save of that exact name and tag)"
                            % (name, ref, namespace, group["archive"], what))
    return failures


# ---------------------------------------------------------------------------------------------
# result and diff (pure)
# ---------------------------------------------------------------------------------------------

def result(wanted, planned, after=None, imported=None, added=None, check_mode=False):
    """The module's result. Without ``after`` (check mode, or nothing to import) it is the state read once;
    ``changed`` is whether an import happened (in check mode: would happen)."""
    listing_after = after
    if listing_after is None:
        present, missing = planned["present"], planned["missing"]
    else:
        present = [w["name"] for w in wanted if holds(listing_after, w["ref"])]
        missing = [w["name"] for w in wanted if w["name"] not in present]
    would = [name for group in planned["imports"] for name in group["names"]]
    return {
        "changed": bool(would) if check_mode else bool(imported),
        "present": present,
        "missing": missing,
        "imported": would if check_mode else list(imported or []),
        "added": list(added or []),
        "references": dict((w["name"], w["ref"]) for w in wanted),
        "actions": actions(planned),
    }


def diff(wanted, planned):
    """Each wanted image, present or missing, before and after (in check mode: after the planned imports)."""
    imported = dict((name, group["archive"]) for group in planned["imports"] for name in group["names"])

    def line(name, state):
        return "%s: %s\n" % (name, state)

    before = "".join(line(w["name"], "present" if w["name"] in planned["present"] else "missing") for w in wanted)
    after = "".join(line(w["name"], "present" if w["name"] in planned["present"] else
                         ("imported from %s" % imported[w["name"]] if w["name"] in imported else "missing"))
                    for w in wanted)
    return {"before": before, "after": after}
