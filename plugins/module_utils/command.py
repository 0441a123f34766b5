# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way this collection's modules run external commands.

argv lists only (never a shell), LC_ALL=C so output parses the same everywhere, a timeout on
every call, and failures that carry cmd, rc, stdout and stderr.  ``redact`` lists strings
(join tokens) that must never appear in a result or an error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def redacted(text, secrets):
    """Return text with every secret replaced, for anything that leaves the module."""
    if text is None:
        return text
    for secret in secrets or ():
        if secret:
            text = text.replace(secret, "********")
    return text


def redacted_argv(argv, secrets):
    return [redacted(arg, secrets) for arg in argv]


class CommandRunner(object):
    """Run argv lists through AnsibleModule.run_command with the collection's rules."""

    def __init__(self, module, default_timeout=60, redact=None):
        self.module = module
        self.default_timeout = default_timeout
        self.redact = list(redact or [])

    def binary(self, name, required=True, extra_paths=None):
        return self.module.get_bin_path(name, required=required, opt_dirs=extra_paths or ["/usr/sbin", "/sbin"])

    def run(self, argv, check=True, timeout=None, data=None, msg=None):
        """Run argv; return (rc, stdout, stderr). rc 124 means the timeout expired."""
        argv = [str(a) for a in argv]
        wrapped = argv
        limit = timeout if timeout is not None else self.default_timeout
        timeout_bin = self.module.get_bin_path("timeout")
        if limit and timeout_bin:
            # SIGTERM at the limit, SIGKILL 5 s later; rc 124 is kept so callers can tell a timeout.
            wrapped = [timeout_bin, "--kill-after=5", str(int(limit))] + argv
        rc, out, err = self.module.run_command(wrapped, data=data, environ_update=C_LOCALE, check_rc=False)
        if check and rc != 0:
            self.fail(msg or "command failed", argv, rc, out, err)
        return rc, out, err

    def fail(self, msg, argv, rc, out, err, **extra):
        self.module.fail_json(
            msg="%s%s" % (redacted(msg, self.redact), " (timed out)" if rc == 124 else ""),
            cmd=" ".join(redacted_argv(argv, self.redact)),
            rc=rc,
            stdout=redacted(out, self.redact),
            stderr=redacted(err, self.redact),
            **extra
        )
