#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_snapshot
short_description: Save, check or restore a snapshot of kubeadm's etcd on the control plane
version_added: "0.3.0"
description:
  - "Runs etcdctl and etcdutl B(inside the running etcd container) (C(crictl exec)): kubeadm's etcd image carries both,
    and etcd's data directory and C(/etc/kubernetes/pki/etcd) are mounted from the host at the same paths, so
    nothing needs installing on the node."
  - Snapshots live in O(snapshot_subdir) of etcd's data directory (C(--data-dir) of the manifest, C(/var/lib/etcd)),
    created with mode 0700; each snapshot file gets mode 0600 (a snapshot holds every Secret of the cluster).
  - "O(state=save): C(etcdctl snapshot save) over the local client endpoint with the C(healthcheck-client)
    certificate, then C(etcdutl snapshot status) to verify it and its sha256. Never overwrites a file. With
    O(keep) above 0, older snapshots in the directory (only files named like this module names them) are removed
    so that the newest O(keep) remain."
  - "O(state=status): read-only; the status and sha256 of the snapshot O(name) in the snapshot directory."
  - "O(state=restore): B(destructive). Verifies the snapshot O(name) (and O(sha256) when given), restores it with
    C(etcdutl snapshot restore) into a new directory beside the member directory, using the member name and peer URLs
    of the etcd manifest, then stops the static pods O(static_pods) by moving their manifests out of O(manifests_dir),
    waits until their containers are gone, moves the old member directory aside to
    C(<data-dir>/member.before-restore-<UTC time>) (B(never deleted); RV(member_aside)), moves the restored one in
    its place, puts the manifests back and waits until etcd answers C(endpoint health). The manifests are put back
    whatever happens after they were moved."
  - The revision of the restored data is bumped by O(bump_revision) and marked compacted, so that every watcher (the
    API server's cache, controllers, kubelets) lists again instead of trusting a cache newer than the data.
author:
  - DGX Spark cluster contributors (@dgx-spark-cluster)
options:
  state:
    description: V(save) takes a snapshot, V(status) checks one, V(restore) restores one.
    type: str
    choices: [save, status, restore]
    default: save
  name:
    description:
      - The snapshot file name in the snapshot directory (no directory part).
      - Required with O(state=status) and O(state=restore). With O(state=save), the default is
        C(etcd-snapshot-<node>-<UTC YYYYmmddTHHMMSSZ>[-<label>].db).
    type: str
  label:
    description: With O(state=save) and no O(name), a word appended to the generated name (for example C(pre-restore)).
    type: str
    default: ""
  node_name:
    description: The node part of a generated name. The default is the member name (C(--name)) of the etcd manifest.
    type: str
  snapshot_subdir:
    description: The snapshot directory, relative to etcd's data directory (host and container paths are the same).
    type: str
    default: snapshots
  keep:
    description:
      - With O(state=save), how many snapshots the node keeps in the snapshot directory (the newest, by the time in
        their names; the one just saved always stays). V(0) removes none.
    type: int
    default: 0
  sha256:
    description: With O(state=status) and O(state=restore), the checksum the snapshot must have.
    type: str
  manifest:
    description: The etcd static pod manifest.
    type: path
    default: /etc/kubernetes/manifests/etcd.yaml
  manifests_dir:
    description: The kubelet's static pod directory (O(state=restore) moves manifests out of it and back).
    type: path
    default: /etc/kubernetes/manifests
  static_pods:
    description:
      - The static pods (manifest file names without C(.yaml), which are also their container names) stopped during
        a restore. Must include C(etcd).
    type: list
    elements: str
    default: [kube-apiserver, kube-controller-manager, kube-scheduler, etcd]
  endpoint:
    description: etcd's client endpoint, as seen from inside the etcd container.
    type: str
    default: https://127.0.0.1:2379
  pki_dir:
    description: Where the etcd container sees C(ca.crt) and C(healthcheck-client.crt/.key).
    type: str
    default: /etc/kubernetes/pki/etcd
  cri_socket:
    description: The CRI endpoint crictl talks to.
    type: str
    default: unix:///run/containerd/containerd.sock
  bump_revision:
    description: With O(state=restore), how far to bump the restored revision (marked compacted). V(0) does not bump.
    type: int
    default: 1000000000
  stop_timeout:
    description: Seconds to wait for the static pods' containers to stop during a restore.
    type: int
    default: 180
  start_timeout:
    description: Seconds to wait for etcd to answer again after a restore.
    type: int
    default: 300
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode finds the etcd container, reads the manifest and reports the snapshot it would save or the restore
        steps it would take (RV(steps)); it runs no etcdctl or etcdutl command that writes and moves nothing.
      - With O(state=restore) it verifies the snapshot (read-only C(etcdutl snapshot status)) when the file is on the
        node already.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: A kubeadm control plane whose etcd runs as a static pod under a CRI runtime that crictl reaches.
  idempotent:
    description: O(state=status) never changes anything; O(state=save) and O(state=restore) change something each time by design.
    support: none
notes:
  - The etcd container must be running (the tools run inside it); a control plane whose etcd no longer starts needs
    etcdutl on the host instead, which this module does not do.
  - Only one-member etcd clusters (kubeadm's stacked etcd on a single control plane) can be restored.
seealso:
  - module: dgx_spark.cluster.kubeadm_node
"""

EXAMPLES = r"""
- name: Snapshot etcd, keeping the newest three on the node
  dgx_spark.cluster.etcd_snapshot:
    state: save
    keep: 3
  register: snap

- name: Restore a snapshot already copied into /var/lib/etcd/snapshots
  dgx_spark.cluster.etcd_snapshot:
    state: restore
    name: etcd-snapshot-spark-2959-20250101T120000Z.db
    sha256: "{{ expected_sha256 }}"
"""

RETURN = r"""
snapshot:
  description: The snapshot saved, checked or restored (for a save in check mode, the one that would be saved).
  returned: always
  type: dict
  contains:
    path:
      description: Its path on the node (and in the etcd container).
      type: str
      sample: /var/lib/etcd/snapshots/etcd-snapshot-spark-2959-20250101T120000Z.db
    name:
      description: Its file name.
      type: str
    sha256:
      description: Its checksum (null in check mode when not read).
      type: str
    size:
      description: Its size in bytes.
      type: int
    status:
      description: C(etcdutl snapshot status) (hash, revision, total_keys, total_size, version), null when not read.
      type: dict
      sample: {"hash": 3700109013, "revision": 1045, "total_keys": 1270, "total_size": 3514368, "version": "3.5.0"}
container_id:
  description: The etcd container the tools ran in (for a restore, the new one after it).
  returned: always
  type: str
command:
  description: The command run (or that would run) inside the etcd container.
  returned: when state is save or restore
  type: list
  elements: str
removed:
  description: Snapshots rotation removed from the node (in check mode, would remove).
  returned: when state is save
  type: list
  elements: str
steps:
  description: The restore, step by step (in check mode, what would happen).
  returned: when state is restore
  type: list
  elements: str
member_aside:
  description: Where the old member directory was moved (kept; delete it yourself once the restore is judged good).
  returned: when state is restore
  type: str
  sample: /var/lib/etcd/member.before-restore-20250101T120500Z
manifests_aside:
  description: Where the manifests waited during the restore (empty afterwards, removed when it is).
  returned: when state is restore
  type: str
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import etcd_backup, etcd_backup_io
from ansible_collections.dgx_spark.cluster.plugins.module_utils.command import CommandRunner

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["save", "status", "restore"], default="save"),
    name=dict(type="str"),
    label=dict(type="str", default=""),
    node_name=dict(type="str"),
    snapshot_subdir=dict(type="str", default="snapshots"),
    keep=dict(type="int", default=0),
    sha256=dict(type="str"),
    manifest=dict(type="path", default="/etc/kubernetes/manifests/etcd.yaml"),
    manifests_dir=dict(type="path", default=etcd_backup.DEFAULT_MANIFESTS_DIR),
    static_pods=dict(type="list", elements="str", default=list(etcd_backup.DEFAULT_STATIC_PODS)),
    endpoint=dict(type="str", default=etcd_backup.DEFAULT_ENDPOINT),
    pki_dir=dict(type="str", default=etcd_backup.DEFAULT_PKI_DIR),
    cri_socket=dict(type="str", default="unix:///run/containerd/containerd.sock"),
    bump_revision=dict(type="int", default=etcd_backup.DEFAULT_BUMP_REVISION),
    stop_timeout=dict(type="int", default=180),
    start_timeout=dict(type="int", default=300),
)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def status_of(module, etcd, container_id, path):
    rc, out, err = etcd.run_in(container_id, etcd_backup.status_command(path), 120, "etcdutl snapshot status failed")
    try:
        return etcd_backup.parse_snapshot_status(out)
    except ValueError as exc:
        module.fail_json(msg="the snapshot %s does not verify: %s" % (path, exc), stderr=err)
        raise  # not reached


def save(module, etcd, container_id, flags, directory):
    p = module.params
    name = etcd_backup.check_file_name(p["name"] or etcd_backup.snapshot_name(
        p["node_name"] or flags.get("name"), utcnow(), p["label"]))
    path = os.path.join(directory, name)
    command = etcd_backup.save_command(p["endpoint"], p["pki_dir"], path)
    existing = etcd_backup_io.list_files(directory)
    if os.path.exists(path):
        module.fail_json(msg="%s exists already: a snapshot is never overwritten" % path)
    would_remove = etcd_backup.snapshots_to_remove(existing + [path], p["keep"], protect=[name]) if p["keep"] else []
    if module.check_mode:
        module.exit_json(**etcd_backup.save_result(path, name, container_id, command, True, removed=would_remove))
    etcd_backup_io.make_private_dir(directory)
    etcd.run_in(container_id, command, etcd_backup_io.SAVE_TIMEOUT, "etcdctl snapshot save failed")
    os.chmod(path, 0o600)
    status = status_of(module, etcd, container_id, path)
    removed, errors = [], []
    if p["keep"]:
        removed, errors = etcd_backup_io.remove_files(etcd_backup.snapshots_to_remove(
            etcd_backup_io.list_files(directory), p["keep"], protect=[name]))
    result = etcd_backup.save_result(path, name, container_id, command, False, status=status,
                                     sha256=module.sha256(path), size=os.path.getsize(path), removed=removed)
    for error in errors:
        module.warn("rotation could not remove %s" % error)
    module.exit_json(**result)


def check_sha256(module, path, expected):
    actual = module.sha256(path)
    if expected and actual != expected.lower():
        module.fail_json(msg="%s has sha256 %s, not the expected %s: nothing was changed" % (path, actual, expected))
    return actual


def status(module, etcd, container_id, directory):
    name = etcd_backup.check_file_name(module.params["name"])
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        module.fail_json(msg="no snapshot %s on this node" % path)
    sha256 = check_sha256(module, path, module.params["sha256"])
    module.exit_json(changed=False, container_id=container_id, snapshot={
        "path": path, "name": name, "sha256": sha256, "size": os.path.getsize(path),
        "status": status_of(module, etcd, container_id, path)})


def restore(module, etcd, container_id, flags, directory):
    p = module.params
    name = etcd_backup.check_file_name(p["name"])
    path = os.path.join(directory, name)
    if "etcd" not in p["static_pods"]:
        module.fail_json(msg="static_pods must include etcd (etcd must be stopped to swap its member directory)")
    config = etcd_backup.member_config(flags)  # a ValueError ends the module (main) naming what is wrong
    plan = etcd_backup.plan_restore(config, path, utcnow().strftime(etcd_backup.TIMESTAMP_FORMAT), p["manifests_dir"],
                                    p["static_pods"], p["bump_revision"])
    result = dict(changed=True, container_id=container_id, command=etcd_backup.restore_command(plan),
                  steps=etcd_backup.restore_steps(plan), member_aside=plan["member_aside"],
                  manifests_aside=plan["manifests_aside"],
                  snapshot={"path": path, "name": name, "sha256": None, "size": None, "status": None})
    present = os.path.isfile(path)
    if present:
        result["snapshot"].update(sha256=check_sha256(module, path, p["sha256"]), size=os.path.getsize(path),
                                  status=status_of(module, etcd, container_id, path))
    if module.check_mode:
        if not present:
            module.warn("%s is not on the node yet (a check run copies nothing): it was not verified" % path)
        module.exit_json(**result)
    if not present:
        module.fail_json(msg="no snapshot %s on this node: nothing was changed" % path, **result)
    if not os.path.isdir(plan["member"]):
        module.fail_json(msg="%s is not a directory: is this etcd's data directory?" % plan["member"], **result)
    etcd.run_in(container_id, result["command"], etcd_backup_io.RESTORE_TIMEOUT,
                "etcdutl snapshot restore failed (nothing else was changed; %s may hold a partial restore)"
                % plan["restore_dir"])
    moved = etcd_backup_io.move_manifests_aside(plan)
    failure = None
    try:
        left = etcd.wait_gone(p["static_pods"], p["stop_timeout"])
        if left:
            failure = ("the containers of %s still run %ss after their manifests were moved: the member directory "
                       "was not touched" % (", ".join(left), p["stop_timeout"]))
        else:
            etcd_backup_io.swap_member(plan)
    except OSError as exc:
        failure = "moving the member directories failed: %s (the old member is in place)" % exc
    finally:
        back_errors = etcd_backup_io.put_manifests_back(moved)
    if back_errors:
        module.fail_json(msg="could not put the manifests back: %s; move them from %s to %s by hand"
                         % ("; ".join(back_errors), plan["manifests_aside"], p["manifests_dir"]), **result)
    try:
        os.rmdir(plan["manifests_aside"])
    except OSError:
        pass
    if failure:
        module.fail_json(msg=failure, **result)
    new_id, error = etcd.wait_healthy(p["endpoint"], p["pki_dir"], p["start_timeout"])
    if not new_id:
        module.fail_json(msg="etcd did not answer within %ss after the restore (%s); the old member is at %s"
                         % (p["start_timeout"], error, plan["member_aside"]), **result)
    result["container_id"] = new_id
    module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("state", "status", ["name"]), ("state", "restore", ["name"])])
    p = module.params
    if p["keep"] < 0:
        module.fail_json(msg="keep must be 0 (no rotation) or more")
    etcd = etcd_backup_io.Etcd(CommandRunner(module), p["cri_socket"])
    container_id = etcd.container()
    if not container_id:
        module.fail_json(msg="no running etcd container here (crictl ps --label %s=etcd): etcdctl and etcdutl run "
                             "inside it, so the control plane's etcd must run" % etcd_backup.CONTAINER_LABEL)
    try:
        flags = etcd_backup.parse_manifest_flags(etcd_backup_io.read_text(p["manifest"]))
        if not flags.get("data-dir"):
            module.fail_json(msg="%s has no --data-dir flag" % p["manifest"])
        directory = etcd_backup.snapshot_dir(flags["data-dir"].rstrip("/"), p["snapshot_subdir"])
        if p["state"] == "save":
            save(module, etcd, container_id, flags, directory)
        elif p["state"] == "status":
            status(module, etcd, container_id, directory)
        else:
            restore(module, etcd, container_id, flags, directory)
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
