# -*- coding: utf-8 -*-
# TEST STAND-IN - NOT KUBERNETES.
# Part of the lab stand-in for the Kubernetes pieces the dgx_spark.cluster roles call (tests/standin/README.md).
# It is never shipped in the built collection and is no evidence that a real cluster works.
#
# Shared helpers for the stand-ins (apiserver, kubeadm, kubelet, crictl): python3 standard library only, because the
# lab nodes (Debian 12 containers) have no pip packages. Contents: paths under STANDIN_ROOT, the lab config, a small
# YAML subset reader/writer, kubeconfig handling, an HTTPS API client (client certificate or bearer token), openssl
# helpers (CA, signed certificates, CSRs, CA public-key pin), bootstrap-token JWS, Go-style durations and tabwriter.
"""Shared helpers for the Kubernetes test stand-ins (standard library only)."""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.parse

STANDIN_MARK = "STAND-IN (tests/standin of dgx_spark.cluster): test stand-in, NOT Kubernetes"

# --------------------------------------------------------------------------------------------------------------------
# Paths and configuration
# --------------------------------------------------------------------------------------------------------------------


def root():
    """The fake filesystem root for tests (STANDIN_ROOT), or '' for the real one."""
    return os.environ.get("STANDIN_ROOT", "").rstrip("/")


def P(path):
    """Map an absolute node path (/etc/kubernetes/...) into STANDIN_ROOT when that is set."""
    r = root()
    if r and path.startswith("/"):
        return r + path
    return path


DEFAULT_CONFIG = {
    # Identity of the node this file sits on (the kubelet takes its node name from its client certificate).
    "node_ip": None,                      # fallback InternalIP when no --node-ip is configured for the kubelet
    "api_server": "10.10.10.1:6443",      # informational; kubeconfigs carry the real endpoint
    "kubernetes_version": "v1.31.4",      # kubeadm/kubelet/apiserver version the stand-ins report
    "containerd_version": "1.6.20",       # containerRuntimeVersion reported when `containerd --version` is unusable
    "node_monitor_grace_period": None,    # seconds; overrides the kube-controller-manager manifest flag (default 40)
    "pod_eviction_orphan_quarantine": 40,  # seconds before pods bound to a deleted Node are garbage-collected
    "status_interval": 2,                 # kubelet status/lease period, seconds
    "healthz_port": 10248,                # kubelet healthz (127.0.0.1); 0 disables
    "kubelet_port": 10250,                # kubelet server port (only held open, like the real port); 0 disables
    "kubelet_address": "0.0.0.0",
    "runtime_check": "systemd",           # "systemd": `systemctl is-active containerd`; "socket": the CRI socket exists
    "cri_socket": "/run/containerd/containerd.sock",
    "stale_netns_notready": True,         # stand-in convention: a stale /run/netns/cni-* makes the Node NotReady
    "reregister_deleted_node": False,     # real kubelets (1.31) do NOT re-create a deleted Node until restarted
    "kubelet_wait_timeout": 240,          # kubeadm's wait for a healthy kubelet (real: 4m0s)
    "discovery_timeout": 300,             # kubeadm join token discovery timeout (real: 5m0s)
    "tls_bootstrap_timeout": 60,          # kubeadm join wait for the node client certificate
    "extra_capacity": {},                 # e.g. {"nvidia.com/gpu": "1"} (what a device plugin would advertise)
    "extra_labels": {},
}


def load_config():
    cfg = dict(DEFAULT_CONFIG)
    path = os.environ.get("STANDIN_CONFIG") or P("/etc/standin/config")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if isinstance(data, dict):
            cfg.update(data)
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise SystemExit("stand-in: invalid JSON in %s: %s" % (path, exc))
    return cfg


def fault(name):
    """Fault-injection switches: a file /etc/standin/<name> exists, or STANDIN_FAULT_<NAME> is set."""
    env = "STANDIN_FAULT_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    if os.environ.get(env):
        return True
    return os.path.exists(P("/etc/standin/" + name))


def write_atomic(path, data, mode=0o644):
    """Write bytes/str to path atomically (temp file in the same directory, fsync, rename, fsync dir)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def read_text(path, default=None):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return default


# --------------------------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------------------------


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(dt=None):
    dt = dt or utcnow()
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(dt=None):
    dt = dt or utcnow()
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value):
    """Parse RFC3339 (with or without fraction, Z or offset). Returns aware datetime or None."""
    if not value or not isinstance(value, str):
        return None
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)$", v)
    if not m:
        return None
    frac = (m.group(2) or ".0")[1:7].ljust(6, "0")
    try:
        return datetime.datetime.fromisoformat("%s.%s%s" % (m.group(1), frac, m.group(3)))
    except ValueError:
        return None


_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text):
    """Go time.ParseDuration subset ('15m', '1h30m', '40s', '0'); a bare number means seconds."""
    t = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    pos, total = 0, 0.0
    for m in _DUR_RE.finditer(t):
        if m.start() != pos:
            raise ValueError('time: invalid duration "%s"' % text)
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise ValueError('time: invalid duration "%s"' % text)
    return total


def go_duration(seconds):
    """Format seconds like Go's time.Duration.String() (e.g. 4m0s, 1.503447506s, 501.346689ms)."""
    if seconds < 1:
        return "%sms" % ("%.6f" % (seconds * 1000)).rstrip("0").rstrip(".")
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    s_txt = ("%.9f" % s).rstrip("0").rstrip(".")
    out = ""
    if h >= 1:
        out += "%dh" % h
    if h >= 1 or m >= 1:
        out += "%dm" % m
    return out + s_txt + "s"


def short_human_duration(seconds):
    """k8s.io/apimachinery duration.ShortHumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm" % (s // 60)
    if s < 48 * 3600:
        return "%dh" % (s // 3600)
    if s < 365 * 86400:
        return "%dd" % (s // 86400)
    return "%dy" % (s // (365 * 86400))


def human_ago(seconds):
    """crictl's CREATED column ('2 minutes ago', 'About an hour ago') - go-units HumanDuration + ' ago'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second ago"
    if s == 1:
        return "1 second ago"
    if s < 60:
        return "%d seconds ago" % s
    m = s // 60
    if m == 1:
        return "About a minute ago"
    if m < 60:
        return "%d minutes ago" % m
    h = round(s / 3600)
    if h == 1:
        return "About an hour ago"
    if h < 48:
        return "%d hours ago" % h
    if h < 24 * 7 * 2:
        return "%d days ago" % (h // 24)
    return "%d weeks ago" % (h // (24 * 7))


def tabwrite(rows, minwidth=10, padding=3):
    """Go text/tabwriter with AlignLeft: every column but the last padded to max(minwidth, widest+padding)."""
    if not rows:
        return ""
    ncol = max(len(r) for r in rows)
    widths = [0] * ncol
    for r in rows:
        for i, c in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(c) + padding, minwidth)
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# A small YAML subset: block maps and sequences, flow [..] / {..}, quoted and plain scalars, comments, '---' documents,
# literal/folded block scalars. Enough for kubeadm configs, kubeconfigs, static Pod manifests and kubelet configs.
# JSON is YAML, so JSON input works too.
# --------------------------------------------------------------------------------------------------------------------


class YAMLError(ValueError):
    pass


def _strip_comment(text):
    out, q, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if q:
            if q == '"' and ch == "\\":
                out.append(text[i:i + 2])
                i += 2
                continue
            if ch == q:
                q = None
        elif ch in "\"'" and (i == 0 or text[i - 1] in " \t[{,:-"):
            q = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            break
        out.append(ch)
        i += 1
    return "".join(out).rstrip()


def _scalar(tok, keep_floats=False):
    t = tok.strip()
    if t == "":
        return None
    if t[0] == '"':
        try:
            return json.loads(t)
        except ValueError:
            raise YAMLError("bad double-quoted scalar: %s" % t)
    if t[0] == "'":
        if not t.endswith("'") or len(t) < 2:
            raise YAMLError("bad single-quoted scalar: %s" % t)
        return t[1:-1].replace("''", "'")
    if t in ("~", "null", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?\d+", t) and not re.fullmatch(r"[-+]?0\d+", t):
        return int(t)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", t):
        return t if keep_floats else float(t)
    return t


class _Flow:
    def __init__(self, text, keep_floats=False):
        self.s, self.i, self.kf = text, 0, keep_floats

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def value(self):
        self.ws()
        if self.i >= len(self.s):
            return None
        ch = self.s[self.i]
        if ch == "[":
            self.i += 1
            out = []
            while True:
                self.ws()
                if self.s[self.i:self.i + 1] == "]":
                    self.i += 1
                    return out
                out.append(self.value())
                self.ws()
                if self.s[self.i:self.i + 1] == ",":
                    self.i += 1
        if ch == "{":
            self.i += 1
            out = {}
            while True:
                self.ws()
                if self.s[self.i:self.i + 1] == "}":
                    self.i += 1
                    return out
                k = self.scalar(stop=":,}")
                self.ws()
                if self.s[self.i:self.i + 1] == ":":
                    self.i += 1
                    v = self.value()
                else:
                    v = None
                out[k] = v
                self.ws()
                if self.s[self.i:self.i + 1] == ",":
                    self.i += 1
                elif self.s[self.i:self.i + 1] != "}":
                    raise YAMLError("bad flow mapping: %s" % self.s)
        return self.scalar(stop=",]}")

    def scalar(self, stop):
        self.ws()
        if self.i < len(self.s) and self.s[self.i] in "\"'":
            q = self.s[self.i]
            j = self.i + 1
            while j < len(self.s):
                if q == '"' and self.s[j] == "\\":
                    j += 2
                    continue
                if self.s[j] == q:
                    if q == "'" and self.s[j + 1:j + 2] == "'":
                        j += 2
                        continue
                    break
                j += 1
            tok = self.s[self.i:j + 1]
            self.i = j + 1
            return _scalar(tok, self.kf)
        j = self.i
        while j < len(self.s):
            ch = self.s[j]
            if ch == ":" and ":" in stop:
                if j + 1 >= len(self.s) or self.s[j + 1] in " ,}":
                    break
            elif ch in stop:
                break
            j += 1
        tok = self.s[self.i:j]
        self.i = j
        return _scalar(tok, self.kf)


def _flow(text, keep_floats=False):
    return _Flow(text, keep_floats).value()


def _split_key(text):
    """Split 'key: rest' at the first ': ' (or trailing ':') outside quotes. Returns (key, rest) or None."""
    if text[:1] in "\"'":
        q = text[0]
        j = 1
        while j < len(text):
            if q == '"' and text[j] == "\\":
                j += 2
                continue
            if text[j] == q:
                break
            j += 1
        key = _scalar(text[:j + 1])
        rest = text[j + 1:].lstrip()
        if rest.startswith(":"):
            return str(key), rest[1:].strip()
        return None
    m = re.match(r"^([^\s:][^:]*?|[^\s:]*?)\s*:(\s+|$)(.*)$", text)
    if not m:
        return None
    return m.group(1), m.group(3).strip()


class _Block:
    def __init__(self, text, keep_floats=False):
        self.kf = keep_floats
        self.raw = text.split("\n")
        self.lines = []  # [indent, content, rawindex]
        for idx, raw in enumerate(self.raw):
            if "\t" in raw[:len(raw) - len(raw.lstrip())]:
                raise YAMLError("tabs are not allowed for indentation (line %d)" % (idx + 1))
            content = _strip_comment(raw.strip()) if raw.strip() else ""
            if content:
                self.lines.append([len(raw) - len(raw.lstrip(" ")), content, idx])

    def parse(self):
        if not self.lines:
            return None
        val, i = self.block(0, self.lines[0][0])
        if i < len(self.lines):
            raise YAMLError("unexpected content at line %d: %s" % (self.lines[i][2] + 1, self.lines[i][1]))
        return val

    def block(self, i, ind):
        c = self.lines[i][1]
        if c == "-" or c.startswith("- "):
            return self.seq(i, ind)
        if _split_key(c) is None:
            # a lone scalar document / multi-line flow value
            text = " ".join(line[1] for line in self.lines[i:])
            return (_flow(text, self.kf) if text[:1] in "[{" else _scalar(text, self.kf)), len(self.lines)
        return self.map(i, ind)

    def blockscalar(self, i, ind, style):
        # collect raw lines after line i with indent > ind (blank lines included)
        start = self.lines[i][2] + 1
        body, j = [], start
        while j < len(self.raw):
            raw = self.raw[j]
            if raw.strip() and len(raw) - len(raw.lstrip(" ")) <= ind:
                break
            body.append(raw)
            j += 1
        while body and not body[-1].strip():
            body.pop()
        nonblank = [len(b) - len(b.lstrip(" ")) for b in body if b.strip()]
        cut = min(nonblank) if nonblank else 0
        lines = [b[cut:] for b in body]
        if style.startswith(">"):
            text = " ".join(x for x in lines)
        else:
            text = "\n".join(lines)
        if not style.endswith("-"):
            text += "\n"
        k = i + 1
        while k < len(self.lines) and self.lines[k][2] < j:
            k += 1
        return text, k

    def value_after(self, i, ind, rest):
        """Value of 'key: rest' / '- rest' on line i with indentation ind."""
        if rest in ("|", "|-", "|+", ">", ">-", ">+"):
            return self.blockscalar(i, ind, rest)
        if rest == "":
            if i + 1 < len(self.lines):
                nind, nc = self.lines[i + 1][0], self.lines[i + 1][1]
                if nind > ind:
                    return self.block(i + 1, nind)
                if nind == ind and (nc == "-" or nc.startswith("- ")):
                    return self.seq(i + 1, ind)
            return None, i + 1
        if rest[:1] in "[{":
            # flow collections may continue on following more-indented lines
            text, j = rest, i + 1
            while j < len(self.lines) and self.lines[j][0] > ind and _balance(text) > 0:
                text += " " + self.lines[j][1]
                j += 1
            return _flow(text, self.kf), j
        return _scalar(rest, self.kf), i + 1

    def map(self, i, ind):
        out = {}
        while i < len(self.lines) and self.lines[i][0] == ind:
            c = self.lines[i][1]
            if c == "-" or c.startswith("- "):
                break
            kv = _split_key(c)
            if kv is None:
                raise YAMLError("expected 'key: value' at line %d: %s" % (self.lines[i][2] + 1, c))
            key, rest = kv
            val, i = self.value_after(i, ind, rest)
            out[key] = val
        if i < len(self.lines) and self.lines[i][0] > ind:
            raise YAMLError("bad indentation at line %d" % (self.lines[i][2] + 1))
        return out, i

    def seq(self, i, ind):
        out = []
        while i < len(self.lines) and self.lines[i][0] == ind:
            c = self.lines[i][1]
            if not (c == "-" or c.startswith("- ")):
                break
            rest = c[1:].lstrip()
            if rest and rest[:1] not in "[{\"'" and _split_key(rest) is not None:
                # '- key: value' starts a mapping indented at the item's content column
                nind = ind + (len(c) - len(rest))
                self.lines[i] = [nind, rest, self.lines[i][2]]
                val, i = self.map(i, nind)
            elif rest.startswith("- "):
                nind = ind + (len(c) - len(rest))
                self.lines[i] = [nind, rest, self.lines[i][2]]
                val, i = self.seq(i, nind)
            else:
                val, i = self.value_after(i, ind, rest)
            out.append(val)
        return out, i


def _balance(text):
    depth, q = 0, None
    for ch in text:
        if q:
            if ch == q:
                q = None
        elif ch in "\"'":
            q = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def yaml_load_all(text, keep_floats=False):
    """Parse all documents. keep_floats=True leaves float-looking scalars as strings (what a typed Go config does
    for string fields such as a bootstrap token '123456.1234567890123456')."""
    docs, cur = [], []
    for line in text.split("\n"):
        if re.match(r"^---(\s|$)", line) or line.strip() == "...":
            docs.append("\n".join(cur))
            cur = []
            rest = line[3:].strip() if line.startswith("---") else ""
            if rest and not rest.startswith("#"):
                cur.append(rest)
        else:
            cur.append(line)
    docs.append("\n".join(cur))
    out = []
    for d in docs:
        s = d.strip()
        if not s:
            continue
        if s[:1] in "{[":
            try:
                out.append(json.loads(s))
                continue
            except ValueError:
                pass
        out.append(_Block(d, keep_floats).parse())
    return out


def yaml_load(text):
    docs = yaml_load_all(text)
    return docs[0] if docs else None


_PLAIN_OK = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:@+=,()%~-]*( [A-Za-z0-9_./:@+=,()%~-]+)*$")


def _yscalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    s = str(v)
    if (_PLAIN_OK.match(s) and _scalar(s) == s and ": " not in s and not s.endswith(":")
            and s not in ("y", "n", "yes", "no", "on", "off", "Y", "N", "Yes", "No", "On", "Off")):
        return s
    return json.dumps(s, ensure_ascii=False)


def yaml_dump(obj, indent=0):
    """Emit YAML in kubectl's style (lists at the parent key's indentation)."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            key = _yscalar(k) if not isinstance(k, str) or not re.match(r"^[A-Za-z0-9_./-]+$", k) else k
            if isinstance(v, dict) and v:
                lines.append("%s%s:\n%s" % (pad, key, yaml_dump(v, indent + 2)))
            elif isinstance(v, list) and v:
                lines.append("%s%s:\n%s" % (pad, key, yaml_dump(v, indent)))
            elif isinstance(v, dict):
                lines.append("%s%s: {}\n" % (pad, key))
            elif isinstance(v, list):
                lines.append("%s%s: []\n" % (pad, key))
            else:
                lines.append("%s%s: %s\n" % (pad, key, _yscalar(v)))
        return "".join(lines)
    if isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = yaml_dump(item, indent + 2)
                lines.append(pad + "- " + sub[indent + 2:])
            elif isinstance(item, dict):
                lines.append("%s- {}\n" % pad)
            elif isinstance(item, list):
                lines.append("%s- []\n" % pad)
            else:
                lines.append("%s- %s\n" % (pad, _yscalar(item)))
        return "".join(lines)
    return pad + _yscalar(obj) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# openssl helpers (the `openssl` CLI is present on the nodes and on the build machine)
# --------------------------------------------------------------------------------------------------------------------


def _openssl(args, input_data=None):
    res = subprocess.run(["openssl"] + args, input=input_data, capture_output=True, timeout=60, check=False)
    if res.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args[:2]), res.stderr.decode(errors="replace")))
    return res.stdout


def _subj(cn, orgs=()):
    parts = ["/O=%s" % o for o in orgs] + ["/CN=%s" % cn]
    return "".join(p.replace(",", "\\,") for p in parts)


def _newkey(algo):
    """openssl -newkey arguments for kubeadm's encryptionAlgorithm values (RSA-2048 default, ECDSA-P256, ...)."""
    a = (algo or "RSA-2048").upper()
    if a.startswith("ECDSA"):
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    bits = {"RSA-3072": 3072, "RSA-4096": 4096}.get(a, 2048)
    return ["-newkey", "rsa:%d" % bits]


def gen_ca(cert_path, key_path, cn="kubernetes", days=3650, algo="RSA-2048"):
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    args = ["req", "-x509"] + _newkey(algo)
    args += ["-nodes", "-keyout", key_path, "-out", cert_path, "-days", str(days), "-subj", _subj(cn), "-sha256",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
             "-addext", "subjectKeyIdentifier=hash"]
    _openssl(args)
    os.chmod(key_path, 0o600)


def _ext_text(kind, sans=()):
    lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    eku = {"client": "clientAuth", "server": "serverAuth", "both": "serverAuth,clientAuth"}[kind]
    lines.append("extendedKeyUsage=%s" % eku)
    alt = []
    for s in sans:
        if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+:[0-9a-fA-F:]*", s):
            alt.append("IP:%s" % s)
        else:
            alt.append("DNS:%s" % s)
    if alt:
        lines.append("subjectAltName=" + ",".join(alt))
    return "\n".join(lines) + "\n"


def sign_csr(csr_pem, ca_cert, ca_key, kind="client", sans=(), days=365):
    """Sign a PEM CSR with the CA; returns the PEM certificate (bytes)."""
    with tempfile.TemporaryDirectory(prefix="standin-ssl-") as td:
        csr = os.path.join(td, "req.csr")
        ext = os.path.join(td, "ext.cnf")
        with open(csr, "wb") as fh:
            fh.write(csr_pem if isinstance(csr_pem, bytes) else csr_pem.encode())
        with open(ext, "w") as fh:
            fh.write(_ext_text(kind, sans))
        serial = "0x" + secrets.token_hex(16)
        return _openssl(["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", serial,
                         "-days", str(days), "-sha256", "-extfile", ext])


def gen_key_csr(cn, orgs=(), algo="RSA-2048"):
    """Generate a key (RSA-2048 or ECDSA-P256) and a CSR for CN/O. Returns (key_pem, csr_pem) bytes."""
    with tempfile.TemporaryDirectory(prefix="standin-ssl-") as td:
        key = os.path.join(td, "k.pem")
        csr = os.path.join(td, "r.csr")
        _openssl(["req", "-new"] + _newkey(algo) + ["-nodes", "-keyout", key, "-out", csr, "-subj", _subj(cn, orgs)])
        with open(key, "rb") as fh:
            k = fh.read()
        with open(csr, "rb") as fh:
            c = fh.read()
        return k, c


def gen_signed(ca_cert, ca_key, cn, orgs=(), kind="client", sans=(), days=365, algo="RSA-2048"):
    """New key + certificate signed by the CA. Returns (cert_pem, key_pem) bytes."""
    key, csr = gen_key_csr(cn, orgs, algo)
    return sign_csr(csr, ca_cert, ca_key, kind=kind, sans=sans, days=days), key


def csr_subject(csr_pem):
    """(CN, [O...]) of a PEM CSR."""
    out = _openssl(["req", "-noout", "-subject", "-nameopt", "RFC2253"],
                   input_data=csr_pem if isinstance(csr_pem, bytes) else csr_pem.encode()).decode()
    text = out.strip()
    if text.startswith("subject="):
        text = text[len("subject="):]
    parts = re.split(r"(?<!\\),", text)
    cn, orgs = None, []
    for p in parts:
        k, _eq, v = p.strip().partition("=")
        v = v.replace("\\,", ",")
        if k == "CN":
            cn = v
        elif k == "O":
            orgs.append(v)
    return cn, orgs


def pubkey_pin(cert_pem):
    """kubeadm's CA pin: sha256 of the DER SubjectPublicKeyInfo, hex."""
    if isinstance(cert_pem, str):
        cert_pem = cert_pem.encode()
    pub = _openssl(["x509", "-pubkey", "-noout"], input_data=cert_pem)
    der = _openssl(["pkey", "-pubin", "-outform", "DER"], input_data=pub)
    return hashlib.sha256(der).hexdigest()


def cert_not_after(cert_pem):
    if isinstance(cert_pem, str):
        cert_pem = cert_pem.encode()
    out = _openssl(["x509", "-noout", "-enddate"], input_data=cert_pem).decode().strip()
    return out.partition("=")[2]


# --------------------------------------------------------------------------------------------------------------------
# Bootstrap tokens and the cluster-info JWS (k8s.io/cluster-bootstrap/token/jws: detached HS256, key = token secret)
# --------------------------------------------------------------------------------------------------------------------

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _pick(n):
    return "".join(secrets.choice(TOKEN_ALPHABET) for _i in range(n))


def new_token():
    return "%s.%s" % (_pick(6), _pick(16))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws_detached(content, token_id, token_secret):
    header = b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    payload = b64url(content.encode() if isinstance(content, str) else content)
    sig = hmac.new(token_secret.encode(), ("%s.%s" % (header, payload)).encode(), hashlib.sha256).digest()
    return "%s..%s" % (header, b64url(sig))


def jws_verify(content, detached, token_id, token_secret):
    try:
        expected = jws_detached(content, token_id, token_secret)
    except Exception:  # pragma: no cover
        return False
    return hmac.compare_digest(expected, detached)


# --------------------------------------------------------------------------------------------------------------------
# kubeconfig
# --------------------------------------------------------------------------------------------------------------------


def kubeconfig_dict(server, ca_pem, user, cluster="kubernetes", cert_pem=None, key_pem=None, token=None,
                    cert_file=None, key_file=None):
    u = {}
    if cert_file:
        u["client-certificate"] = cert_file
        u["client-key"] = key_file or cert_file
    elif cert_pem:
        u["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        u["client-key-data"] = base64.b64encode(key_pem).decode()
    if token:
        u["token"] = token
    ctx = "%s@%s" % (user, cluster)
    return {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(),
                                  "server": server}, "name": cluster}],
        "contexts": [{"context": {"cluster": cluster, "user": user}, "name": ctx}],
        "current-context": ctx,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": u}],
    }


class KubeconfigError(Exception):
    pass


def load_kubeconfig(path):
    """Return dict(server, ca_pem, cert_pem, key_pem, token) for the current context of a kubeconfig file."""
    text = read_text(path)
    if text is None:
        raise KubeconfigError("open %s: no such file or directory" % path)
    try:
        kc = yaml_load(text) or {}
    except YAMLError as exc:
        raise KubeconfigError("error loading config file \"%s\": %s" % (path, exc))
    ctxname = kc.get("current-context")
    ctx = next((c.get("context") or {} for c in kc.get("contexts") or [] if c.get("name") == ctxname), None)
    if ctx is None:
        clusters, users = kc.get("clusters") or [], kc.get("users") or []
        ctx = {"cluster": clusters[0]["name"] if clusters else None, "user": users[0]["name"] if users else None}
    cl = next((c.get("cluster") or {} for c in kc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {})
    us = next((u.get("user") or {} for u in kc.get("users") or [] if u.get("name") == ctx.get("user")), {})

    def blob(data_key, file_key, src):
        if src.get(data_key):
            return base64.b64decode(src[data_key])
        if src.get(file_key):
            fp = src[file_key]
            with open(P(fp) if not fp.startswith(root() or "\0") else fp, "rb") as fh:
                return fh.read()
        return None

    return {
        "server": cl.get("server"),
        "ca_pem": blob("certificate-authority-data", "certificate-authority", cl),
        "cert_pem": blob("client-certificate-data", "client-certificate", us),
        "key_pem": blob("client-key-data", "client-key", us),
        "token": us.get("token"),
        "insecure": bool(cl.get("insecure-skip-tls-verify")),
    }


def cert_cn(cert_pem):
    out = _openssl(["x509", "-noout", "-subject", "-nameopt", "RFC2253"], input_data=cert_pem).decode()
    m = re.search(r"CN=((?:[^,\\]|\\.)*)", out)
    return m.group(1).replace("\\", "") if m else None


# --------------------------------------------------------------------------------------------------------------------
# HTTPS API client
# --------------------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, body, method="", path=""):
        self.status = status
        self.body = body
        self.method, self.path = method, path
        msg = body.get("message") if isinstance(body, dict) else None
        super().__init__(msg or "HTTP %s" % status)

    @property
    def reason(self):
        return self.body.get("reason") if isinstance(self.body, dict) else None


class ConnError(Exception):
    """Transport failure, worded like Go's net/http errors (for messages that mirror the real tools)."""


def go_dial_error(method, url, exc):
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(exc, ConnectionRefusedError):
        why = "dial tcp %s: connect: connection refused" % host
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        why = "dial tcp %s: i/o timeout" % host
    elif isinstance(exc, ssl.SSLCertVerificationError):
        why = "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    elif isinstance(exc, OSError) and exc.errno == 113:
        why = "dial tcp %s: connect: no route to host" % host
    elif isinstance(exc, OSError) and exc.errno == 101:
        why = "dial tcp %s: connect: network is unreachable" % host
    else:
        why = str(exc)
    return '%s "%s": %s' % (method.capitalize() if method != "GET" else "Get", url, why)


class ApiClient:
    def __init__(self, server, ca_pem=None, cert_pem=None, key_pem=None, token=None, insecure=False, timeout=10):
        self.server = server.rstrip("/")
        u = urllib.parse.urlsplit(self.server)
        self.host, self.port = u.hostname, u.port or 443
        self.token = token
        self.timeout = timeout
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if insecure or not ca_pem:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx.load_verify_locations(cadata=ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem)
        if cert_pem and key_pem:
            with tempfile.TemporaryDirectory(prefix="standin-kc-") as td:
                cf, kf = os.path.join(td, "c.pem"), os.path.join(td, "k.pem")
                with open(cf, "wb") as fh:
                    fh.write(cert_pem)
                with open(kf, "wb") as fh:
                    fh.write(key_pem)
                ctx.load_cert_chain(cf, kf)
        self.ctx = ctx

    @classmethod
    def from_kubeconfig(cls, path, timeout=10):
        kc = load_kubeconfig(path)
        return cls(kc["server"], kc["ca_pem"], kc["cert_pem"], kc["key_pem"], kc["token"], kc["insecure"], timeout)

    def url(self, path, query=None):
        q = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self.server + path + q

    def request(self, method, path, body=None, query=None, content_type="application/json", raw=False):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        headers = {"Accept": "application/json", "User-Agent": "standin/0 (linux) stand-in"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        full = path + (("?" + urllib.parse.urlencode(query)) if query else "")
        try:
            conn.request(method, full, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            raise ConnError(go_dial_error(method, self.url(path, query), exc)) from exc
        finally:
            conn.close()
        if raw:
            return resp.status, payload
        try:
            obj = json.loads(payload) if payload else None
        except ValueError:
            obj = {"message": payload.decode(errors="replace")}
        if resp.status >= 400:
            raise ApiError(resp.status, obj if isinstance(obj, dict) else {"message": str(obj)}, method, path)
        return obj

    def get(self, path, **query):
        return self.request("GET", path, query=query or None)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_in_use(port, host="0.0.0.0"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


# --------------------------------------------------------------------------------------------------------------------
# systemd and the container runtime
# --------------------------------------------------------------------------------------------------------------------


def systemctl(*args, timeout=60):
    """Run systemctl (or STANDIN_SYSTEMCTL, a test double). Returns (rc, combined output)."""
    prog = os.environ.get("STANDIN_SYSTEMCTL") or "systemctl"
    if prog == "none":
        return (3 if args and args[0] in ("is-active", "is-enabled") else 0), ""
    if shutil.which(prog) is None and not os.path.exists(prog):
        return 127, "%s: not found" % prog
    try:
        res = subprocess.run([prog] + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "timeout"
    return res.returncode, (res.stdout + res.stderr).strip()


def service_active(name):
    return systemctl("is-active", "--quiet", name)[0] == 0


def runtime_up(cfg=None):
    cfg = cfg or load_config()
    if cfg.get("runtime_check") == "socket":
        return os.path.exists(P(cfg.get("cri_socket") or "/run/containerd/containerd.sock"))
    return service_active("containerd")


def containerd_version(cfg=None):
    cfg = cfg or load_config()
    if not root() and shutil.which("containerd"):
        try:
            out = subprocess.run(["containerd", "--version"], capture_output=True, text=True, timeout=10,
                                 check=False).stdout
            m = re.search(r"\s(v?\d+\.\d+\.\d+\S*)", out)
            if m:
                return m.group(1).lstrip("v")
        except (OSError, subprocess.SubprocessError):
            pass
    return str(cfg.get("containerd_version") or "1.6.20")


def go_arch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def klog(level, fileline, msg, **kv):
    """Log a klog-style structured line to stderr (what journald shows for the real components)."""
    now = datetime.datetime.now()
    head = "%s%s %s %7d %s]" % (level, now.strftime("%m%d"), now.strftime("%H:%M:%S.%f"), os.getpid(), fileline)
    parts = [json.dumps(msg)] + ["%s=%s" % (k, json.dumps(v) if isinstance(v, str) else v) for k, v in kv.items()]
    import sys
    sys.stderr.write(head + " " + " ".join(parts) + "\n")
    sys.stderr.flush()
