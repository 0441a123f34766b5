#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: containerd_image
short_description: Images a node's containerd lacks, imported from image archives on the node
version_added: "0.3.0"
description:
  - Lists the images of one containerd namespace (C(ctr --address <address> -n <namespace> images ls -q)) and tells
    which of O(images) it holds (RV(present)) and which it lacks (RV(missing)).
  - "Names are compared the way containerd and the kubelet name images: C(busybox:1) is
    C(docker.io/library/busybox:1), C(org/x:1) is C(docker.io/org/x:1), C(localhost/x:1) and C(host:5000/x:1) stay as
    they are, no tag means C(:latest), and a digest is kept (a tag beside a digest is dropped). RV(references) gives
    each image's name as containerd stores it."
  - "For each missing image with an O(images[].archive), imports that archive (C(ctr images import <archive>),
    without C(--all-platforms): the archive's image for the node's platform is imported and unpacked for
    containerd's default snapshotter, the one the kubelet starts containers from), then lists the images again. It
    fails, naming the image, the archive and the names the archive did add, when the wanted name is still missing."
  - A missing image without an archive is only reported in RV(missing); what to do about it is the caller's choice.
  - Imports nothing for images containerd holds already, so a second run changes nothing.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  images:
    description: The images the node must hold.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The image reference, as a Pod spec names it (for example C(localhost/comfyui:v0.9.1-arm64)).
        type: str
        required: true
      archive:
        description:
          - An image archive on the node (C(podman save), C(docker save) or an OCI archive) that holds the image under
            O(images[].name), imported when containerd lacks the image. Several images may name the same archive; it
            is imported once.
        type: path
  namespace:
    description: The containerd namespace; the kubelet's images live in C(k8s.io).
    type: str
    default: k8s.io
  address:
    description: containerd's socket.
    type: path
    default: /run/containerd/containerd.sock
  import_timeout:
    description: Seconds one C(ctr images import) may take (an image of several GiB takes minutes).
    type: int
    default: 1800
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Lists the images and imports nothing; RV(imported) and C(changed) say what an import would add.
  diff_mode:
    support: full
    details: Each image present or missing, before and after.
  platform:
    support: full
    platforms: posix
    details: Linux with containerd and its C(ctr) client.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Needs root (containerd's socket).
  - The module imports from archives on the node; copying an archive there is the caller's part
    (M(ansible.builtin.copy)).
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Which of the images does the node hold?
  dgx_spark.cluster.containerd_image:
    images:
      - name: localhost/comfyui:v0.9.1-arm64
  register: comfyui_image
  become: true

- name: Import the image from an archive when the node lacks it
  dgx_spark.cluster.containerd_image:
    images:
      - name: localhost/comfyui:v0.9.1-arm64
        archive: /var/tmp/dgx-spark-images/comfyui.tar
  become: true
"""

RETURN = r"""
present:
  description: The images (as given in O(images)) that containerd holds, after the imports (in check mode, as read).
  returned: always
  type: list
  elements: str
  sample: ["localhost/comfyui:v0.9.1-arm64"]
missing:
  description:
    - The images that containerd lacks, after the imports (in check mode, as read, including those an import would
      add).
  returned: always
  type: list
  elements: str
  sample: ["localhost/comfyui:v0.9.1-arm64"]
imported:
  description: The images imported from their archives (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: ["localhost/comfyui:v0.9.1-arm64"]
added:
  description: The names that the imports added to containerd's list (empty in check mode).
  returned: always
  type: list
  elements: str
  sample: ["localhost/comfyui:v0.9.1-arm64"]
references:
  description: Each image of O(images) to the name containerd stores it under.
  returned: always
  type: dict
  sample: {"busybox:1.36": "docker.io/library/busybox:1.36"}
actions:
  description: The imports done (in check mode, planned).
  returned: always
  type: list
  elements: str
  sample: ["import localhost/comfyui:v0.9.1-arm64 from /var/tmp/dgx-spark-images/comfyui.tar"]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import containerd_image as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner

ARGUMENT_SPEC = dict(
    images=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True),
        archive=dict(type="path"),
    )),
    namespace=dict(type="str", default=core.DEFAULT_NAMESPACE),
    address=dict(type="path", default=core.DEFAULT_ADDRESS),
    import_timeout=dict(type="int", default=core.DEFAULT_IMPORT_TIMEOUT),
)


def list_images(runner, argv, address):
    unused_rc, out, unused_err = runner.run(argv, msg="ctr could not list the images of containerd at %s "
                                                      "(is containerd running?)" % address)
    return core.parse_images_ls(out)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    try:
        wanted = core.check_images(p["images"])
    except core.ImageReferenceError as exc:
        module.fail_json(msg=str(exc))
    runner = CommandRunner(module)
    ctr = runner.binary("ctr")
    list_argv = core.list_argv(ctr, p["address"], p["namespace"])
    listings = [list_images(runner, list_argv, p["address"])]
    planned = core.plan(wanted, listings[0])
    result = core.result(wanted, planned, check_mode=module.check_mode)
    if module._diff:
        result["diff"] = core.diff(wanted, planned)
    if module.check_mode or not planned["imports"]:
        module.exit_json(**result)
    for group in planned["imports"]:
        if not os.path.isfile(group["archive"]):
            module.fail_json(msg=core.archive_missing_message(group), **result)
    outputs, imported = {}, []
    for group in planned["imports"]:
        argv = core.import_argv(ctr, p["address"], p["namespace"], group["archive"])
        rc, out, err = runner.run(argv, check=False, timeout=p["import_timeout"])
        if rc != 0:
            runner.fail(core.import_failed_message(group, p["namespace"], err), argv, rc, out, err,
                        changed=bool(imported), imported=imported)
        outputs[group["archive"]] = core.parse_import_output(out)
        imported.extend(group["names"])
        listings.append(list_images(runner, list_argv, p["address"]))
    result.update(core.result(wanted, planned, after=listings[-1], imported=imported,
                              added=core.added_names(listings[0], listings[-1])))
    failures = core.verify(planned, listings, outputs, p["namespace"])
    if failures:
        module.fail_json(msg=" | ".join(failures), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
