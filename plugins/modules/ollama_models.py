#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ollama_models
short_description: Models of an Ollama server pulled through its own API, only the missing ones, a time slice a call
version_added: "0.4.0"
description:
  - Lists the models Ollama has (C(GET /api/tags)); a name without a tag is C(<name>:latest), as Ollama names it.
    When every model of O(models) is there, nothing else happens.
  - Otherwise pulls the first missing model with a streamed C(POST /api/pull) and reads Ollama's progress lines until
    it says C(success) (then goes on with the next missing model in the same slice), it answers an error (the
    module fails naming the model and Ollama's words), or O(time_slice) seconds have passed. Then it closes the
    connection and returns where the pull stands.
  - Ollama keeps the part of a model it has downloaded when the connection is closed, and the next pull of that
    model resumes from there. Called again while RV(done) is false, a pull of any size goes on slice by slice, and
    each call returns one line of progress (RV(progress)) a person can follow.
  - "Runs where it is called (usually the controller, with C(delegate_to: localhost)); it needs HTTP access to
    O(url)."
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  url:
    description: Ollama's base URL (scheme, address and port), for example C(http://192.168.86.201:11434).
    type: str
    required: true
  models:
    description: The models Ollama must have, as C(ollama pull) names them (C(llama3.1:8b), C(qwen3)).
    type: list
    elements: str
    required: true
  time_slice:
    description:
      - Seconds one call may spend pulling. A slice ends at the first progress line after it is over, or when no line
        came for the rest of the slice.
    type: int
    default: 30
  timeout:
    description: Seconds to wait for Ollama's answer to the list call (C(GET /api/tags)).
    type: int
    default: 10
  validate_certs:
    description: Verify the server's TLS certificate when O(url) is C(https).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Lists the models only and says in RV(progress) which would be pulled. When Ollama cannot be asked (the app is
        not running yet, as in a first run under C(--check)), every model is reported as missing instead of failing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Once every model is present (RV(done)), a call changes nothing.
notes:
  - "Pulling is the server's work: Ollama downloads from its registry, the module only asks and watches."
  - A pull that takes longer than O(time_slice) needs several calls; the apps role loops over them and stops after
    C(apps_model_pull_timeout) seconds, naming the model and the bytes so far (the next run resumes).
seealso:
  - name: Ollama API, Pull a Model
    description: The C(/api/pull) request and its streamed answer.
    link: https://github.com/ollama/ollama/blob/main/docs/api.md#pull-a-model
"""

EXAMPLES = r"""
- name: Models of Ollama present (one slice of pulling the missing ones)
  dgx_spark.cluster.ollama_models:
    url: http://192.168.86.201:11434
    models: [llama3.1:8b, qwen3:8b]
    time_slice: 30
  register: pull
  delegate_to: localhost

- name: Where the pull stands
  ansible.builtin.debug:
    msg: "{{ pull.progress }}"
"""

RETURN = r"""
present:
  description: The models asked for that Ollama had before this call (normalised names).
  returned: always
  type: list
  elements: str
  sample: [qwen3:8b]
pulled:
  description: The models completed in this call.
  returned: always
  type: list
  elements: str
  sample: [llama3.2:1b]
pulling:
  description: The model whose pull this call left unfinished (null when none), its last status and its bytes.
  returned: always
  type: dict
  sample: {model: "llama3.1:8b", status: "pulling 667b0c1932bc", completed: 2147483648, total: 4920753328}
  contains:
    model:
      description: The model.
      type: str
    status:
      description: Ollama's last status line for it.
      type: str
    completed:
      description: Bytes of it downloaded so far (what earlier calls downloaded included).
      type: int
    total:
      description: Bytes of the layers Ollama announced so far.
      type: int
missing:
  description: The models still missing after this call (in check mode, those that would be pulled).
  returned: always
  type: list
  elements: str
  sample: [llama3.1:8b]
done:
  description: True when every model is present (nothing missing).
  returned: always
  type: bool
  sample: false
downloaded:
  description: Bytes this call downloaded.
  returned: always
  type: int
  sample: 2550136832
progress:
  description: One line for a person.
  returned: always
  type: str
  sample: "ollama: llama3.1:8b 2.1 GB of 4.9 GB (43%), 85 MB/s; 1 more model after it"
msg:
  description: The same line (in check mode, what would be pulled).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import ollama_models as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import ollama_models_io as io

ARGUMENT_SPEC = dict(
    url=dict(type="str", required=True),
    models=dict(type="list", elements="str", required=True),
    time_slice=dict(type="int", default=30),
    timeout=dict(type="int", default=10),
    validate_certs=dict(type="bool", default=True),
)


def finish(module, present, missing, **result):
    base = dict(present=present, pulled=[], pulling=None, missing=missing, done=not missing, downloaded=0)
    base.update(result)
    module.exit_json(msg=base["progress"], **base)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    url = p["url"].rstrip("/")
    if p["time_slice"] < 1 or p["timeout"] < 1:
        module.fail_json(msg="time_slice and timeout must be at least 1 second")
    if not all((name or "").strip() for name in p["models"]):
        module.fail_json(msg="models: a model name is empty")
    asked = core.wanted(p["models"])
    try:
        names = io.get_tags(url, p["timeout"], p["validate_certs"])
    except io.OllamaUnreachable as exc:
        if not module.check_mode:
            module.fail_json(msg="ollama: cannot list the models: %s" % exc)
        line = core.progress([], [], None, asked, check_mode=True, would_pull=asked)
        finish(module, [], asked, changed=True, progress="%s (%s)" % (line, exc))
    present, missing = core.split(asked, names)
    if not missing or module.check_mode:
        finish(module, present, missing, changed=bool(missing),
               progress=core.progress(present, [], None, missing, check_mode=bool(missing), would_pull=missing))
    started = io.clock()
    try:
        pulled, pull, downloaded = io.pull_slice(url, missing, started + p["time_slice"], p["validate_certs"])
    except io.PullFailed as exc:
        module.fail_json(msg=core.error_message(exc.model, exc.error), present=present, pulled=exc.pulled,
                         missing=[name for name in missing if name not in exc.pulled])
    result = core.result(present, missing, pulled, pull, downloaded, io.clock() - started)
    module.exit_json(msg=result["progress"], **result)


if __name__ == "__main__":
    main()
