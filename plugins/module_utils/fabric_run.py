# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of dgx_spark.cluster.fabric_ip: the order of its steps, and nothing else.

Every decision comes from the pure core (fabric.py); every read and change of the host goes through the I/O layer
(fabric_io.FabricHost).  What is left here is the sequence - validate, look, choose (bringing up candidates that
are administratively down), plan, change the runtime state, persist with a rollback, check the peers - and the
retry loops between the steps.  No Ansible imports: the module turns the result, or RunFailed, into its exit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dgx_spark.cluster.plugins.module_utils import fabric

PEER_DELAY = 1.0


class RunFailed(Exception):
    """The run stops: ``msg`` and the extra return values (``actions``, ``changed``, ...) of the failure."""

    def __init__(self, msg, result):
        super(RunFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


class FabricRun(object):
    def __init__(self, host, params, check_mode=False, diff=False):
        self.host = host
        self.params = params
        self.check = check_mode
        self.diff = diff
        self.warnings = []

    def fail(self, msg, actions=None, **extra):
        actions = self.host.done if actions is None else actions
        extra.setdefault("changed", bool(actions))
        extra["actions"] = [a["text"] for a in actions]
        raise RunFailed(msg, extra)

    def gather(self):
        try:
            return self.host.gather()
        except fabric.FabricError as exc:
            self.fail(str(exc))

    # ---- choosing the interfaces ------------------------------------------------------------------------------
    def choose(self, ports, interfaces, mgmt, mode):
        try:
            selections, probe = fabric.choose_interfaces(ports, interfaces, mgmt["interfaces"],
                                                         self.params["require_carrier"], mode)
            if mode != "probe" or not probe:
                fabric.check_device_mtu(selections, interfaces, self.params["mtu"])
            return selections, probe
        except fabric.FabricError as exc:
            self.fail(str(exc))

    def probe(self, ports, names, mgmt):
        """Bring up the candidates that are administratively down and wait (up to carrier_timeout) for carrier."""
        for action in fabric.probe_actions(names):
            self.host.execute(action)
        for waited in range(max(self.params["carrier_timeout"], 0) + 1):
            if waited:
                self.host.wait(1)
            interfaces, routes = self.gather()
            if fabric.probe_settled(ports, interfaces, names, mgmt["interfaces"]):
                break
        return interfaces, routes

    def converge(self, selections, state, mgmt):
        """Run the runtime plan until nothing is left (the kernel adds the connected route with the address)."""
        for dummy in range(3):
            interfaces, routes = self.gather()
            try:
                actions, dummy_warnings = fabric.plan_runtime(selections, interfaces, routes, self.params["mtu"],
                                                              state, mgmt["interfaces"])
            except fabric.FabricError as exc:
                self.fail(str(exc))
            if not actions:
                return interfaces
            for action in actions:
                self.host.execute(action)
        self.fail(fabric.not_converged_message(actions))

    # ---- persistence ------------------------------------------------------------------------------------------
    def verify_mgmt(self, mgmt):
        """None when the management address (and mgmt_check_host) survived the apply step, else why not."""
        host = self.params["mgmt_check_host"]
        if not mgmt["interfaces"] and not host:
            return None
        why = ""
        for attempt in range(self.params["retries"] + 1):
            if attempt:
                self.host.wait(self.params["delay"])
            if mgmt["interfaces"]:
                why = fabric.mgmt_lost(self.host.addresses() or {}, mgmt)
                if why:
                    continue
            if host and not self.host.answers(host, self.params["mgmt_check_port"]):
                why = "%s does not answer on TCP port %s" % (host, self.params["mgmt_check_port"])
                continue
            return None
        return why

    def persist(self, persist, file_actions, desired, mgmt):
        for action in file_actions:
            self.host.write(action)
            self.host.done.append(action)
        commands = fabric.apply_actions(persist, file_actions, desired)
        if not commands:
            return
        why = self.host.apply(commands)
        if why is None:
            why = self.verify_mgmt(mgmt)
        self.host.done.extend(commands)
        if why is None:
            return
        # roll back our own change: previous content back (or our new file removed), apply again
        restore = fabric.rollback_actions(file_actions)
        for action in restore:
            self.host.write(action)
        reapply_error = self.host.apply(fabric.apply_actions(persist, restore, fabric.restored_files(restore)))
        reachable = self.verify_mgmt(mgmt) is None
        self.host.done.extend(restore)
        self.fail(fabric.rollback_message(why, file_actions, restore, reapply_error, reachable),
                  rolled_back=True, changed=True)

    # ---- peer checks ------------------------------------------------------------------------------------------
    def check_peers(self, selections, interfaces, actions, check=False):
        """Ping each port's peer (read-only, also in check mode); fail naming every half that still fails."""
        p = self.params
        checks = fabric.plan_peer_checks(selections, interfaces, p["mtu"], p["verify_peers"], check,
                                         p["require_carrier"])
        pending = [c for c in checks if c["todo"]]
        for attempt in range(p["peer_retries"] + 1):
            if not pending:
                break
            if attempt:
                self.host.wait(PEER_DELAY)
            for entry in pending:
                rc, out, err = self.host.ping_peer(entry["argv"])
                fabric.record_ping(entry, rc, out, err)
            pending = [c for c in pending if c["todo"]]
        report = fabric.peer_report(checks)
        message = fabric.peer_failure_message(checks, p["mtu"])
        if message:
            self.fail(message, actions=actions, peer_checks=report)
        return report

    # ---- the run ----------------------------------------------------------------------------------------------
    def run(self):
        """The module's return values (without warnings, which are in ``self.warnings``); raises RunFailed."""
        p = self.params
        try:
            ports = fabric.normalize_ports(p["ports"])
            fabric.validate_mtu(p["mtu"])
            fabric.validate_peer_retries(p["peer_retries"])
        except fabric.FabricError as exc:
            self.fail(str(exc))
        missing = self.host.find_commands(p["persist"], fabric.needs_ping(p["verify_peers"], p["state"], ports))
        if missing:
            self.fail(missing)
        before, routes = self.gather()
        interfaces = before
        mgmt, warnings = fabric.resolve_mgmt(p["mgmt_address"], self.host.ssh_connection(), before)
        self.warnings.extend(warnings)
        try:
            fabric.check_mgmt_conflicts(ports, mgmt["address"])
        except fabric.FabricError as exc:
            self.fail(str(exc))
        self.warnings.extend(fabric.shared_network_warnings(ports))

        probe = []
        if p["state"] == "present":
            # the prediction validates the request before anything changes (and is the check-mode plan)
            selections, probe = self.choose(ports, before, mgmt, "assume")
            if not self.check:
                selections, need = self.choose(ports, before, mgmt, "probe")
                if need:
                    interfaces, routes = self.probe(ports, need, mgmt)
                    selections, dummy = self.choose(ports, interfaces, mgmt, "final")
                probe = []
            self.warnings.extend(fabric.no_carrier_warnings(selections, interfaces))
        else:
            selections = fabric.absent_selections(ports, before, mgmt["interfaces"])

        runtime, warnings = fabric.plan_runtime(selections, interfaces, routes, p["mtu"], p["state"],
                                                mgmt["interfaces"], probed=probe)
        self.warnings.extend(warnings)
        desired = fabric.desired_files(p["persist"], p["state"], fabric.desired_entries(selections), p["mtu"],
                                       p["persist_file"], p["nm_connection_dir"])
        file_actions = fabric.plan_files(desired, self.host.current_files(p["persist"], p["persist_file"],
                                                                          p["nm_connection_dir"]))

        if self.check:
            plan = fabric.probe_actions(probe) + runtime + file_actions + fabric.apply_actions(
                p["persist"], file_actions, desired)
            peer_checks = self.check_peers(selections, before, plan, check=True)
            return self.result(plan, selections, before, runtime + fabric.probe_actions(probe), file_actions,
                               desired, mgmt, before, peer_checks)

        for action in runtime:
            self.host.execute(action)
        self.converge(selections, p["state"], mgmt)
        self.persist(p["persist"], file_actions, desired, mgmt)
        after = self.converge(selections, p["state"], mgmt)
        peer_checks = self.check_peers(selections, after, self.host.done)
        return self.result(self.host.done, selections, before, self.host.done, file_actions, desired, mgmt, after,
                           peer_checks, real=True)

    def result(self, actions, selections, before, runtime, file_actions, desired, mgmt, now, peer_checks,
               real=False):
        persist_file, persist_files = fabric.persist_file_report(self.params["persist"], self.params["persist_file"],
                                                                 desired)
        result = dict(
            changed=bool(actions),
            actions=[a["text"] for a in actions],
            ports=fabric.port_report(selections, now, self.host.speeds([s["name"] for s in selections if s["name"]])),
            persist_file=persist_file,
            persist_files=persist_files,
            mgmt_address=mgmt,
            peer_checks=peer_checks,
        )
        if self.diff:
            result["diff"] = fabric.build_diff(before, selections, [a for a in runtime if a.get("argv")],
                                               file_actions, after=now if real else None)
        return result
