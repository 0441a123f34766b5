#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: health_report
short_description: Finish the cluster health report with each node's judges, and write it as JSON
version_added: "0.3.0"
description:
  - Takes the C(report) of M(dgx_spark.cluster.cluster_health) and adds the findings of each node's own read-only
    judges (membership, fabric addresses, RoCE now, stale CNI state), then makes the status, counts, failure and
    degradation lines and the table again, at the report's own time. The result is the report
    M(dgx_spark.cluster.cluster_health) makes when it is given the node checks itself.
  - Writes it as JSON to O(path) (mode 0600; a missing directory is made 0700), replacing the file atomically.
  - C(check-cluster.yml) reads the cluster first, gives each worker's membership judge the Nodes that read returned,
    runs the judges, and finishes the report with this module on the controller, so the cluster is read once.
  - With a degraded status it returns a warning naming the degraded findings.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  report:
    description: The C(report) that M(dgx_spark.cluster.cluster_health) returned.
    type: dict
    required: true
  node_checks:
    description:
      - Per node C(name), C(unreachable), C(unreachable_msg), C(membership), C(fabric), C(roce), C(cni), as
        M(dgx_spark.cluster.cluster_health)'s C(node_checks) option takes them.
    type: list
    elements: dict
    default: []
  path:
    description: Where the JSON report is written.
    type: path
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
    details:
      - Writing the report file is what the module is for; run it with C(check_mode) false, as C(check-cluster.yml)
        does, to write the report in a check run too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
  idempotent:
    description: The file is rewritten every run (the report's time changes); the module reports no change.
    support: none
notes:
  - It never reports C(changed), as the file is the controller's record of a read-only report, not a change to the
    cluster.
"""

EXAMPLES = r"""
- name: Health | The report, finished and written on the controller
  dgx_spark.cluster.health_report:
    report: "{{ health_report.report }}"
    node_checks: "{{ node_checks }}"
    path: "{{ lookup('ansible.builtin.env', 'HOME') }}/dgx-spark-results/cluster-health.json"
  delegate_to: localhost
  check_mode: false
  register: health_full
"""

RETURN = r"""
status:
  description: V(healthy), V(degraded) or V(failed).
  returned: always
  type: str
  sample: degraded
failures:
  description: "The failed findings, one line each: C(area subject: message)."
  returned: always
  type: list
  elements: str
degradations:
  description: "The degraded findings, one line each: C(area subject: message)."
  returned: always
  type: list
  elements: str
text:
  description: The table a person reads.
  returned: always
  type: str
report:
  description: The whole finished report (status, exit_code, counts, findings, failures, degradations, text,
    generated), as written to O(path).
  returned: always
  type: dict
path:
  description: Where the report was written.
  returned: always
  type: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import health as core


def main():
    module = AnsibleModule(
        argument_spec=dict(
            report=dict(type="dict", required=True),
            node_checks=dict(type="list", elements="dict", default=[]),
            path=dict(type="path", required=True),
        ),
        supports_check_mode=False,
    )
    params = module.params
    if "findings" not in params["report"]:
        module.fail_json(msg="report: not a cluster_health report (it has no findings)")
    result = core.with_node_checks(params["report"], params["node_checks"])
    path = params["path"]
    directory = os.path.dirname(path) or "."
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".cluster-health-")
        with os.fdopen(handle, "w") as out:
            json.dump(result, out, indent=4, sort_keys=True)
            out.write("\n")
        os.chmod(temporary, 0o600)
        # Not module.atomic_move: it gives a new file the umask's mode; the report stays 0600.
        os.rename(temporary, path)
    except (IOError, OSError) as exc:
        module.fail_json(msg="could not write the report to %s: %s" % (path, exc))
    if result["status"] == "degraded":
        module.warn("cluster health is DEGRADED: %s" % "; ".join(result["degradations"]))
    module.exit_json(changed=False, report=result, path=path, status=result["status"], failures=result["failures"],
                     degradations=result["degradations"], text=result["text"])


if __name__ == "__main__":
    main()
