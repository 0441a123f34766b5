"""cluster_lock core: every row of the decision table (docs/cluster_lock.md), on plain data; then the I/O
layer's wait loop (cluster_lock_io.run) with a fake clock on a real temporary directory."""

import json

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import cluster_lock as core
from ansible_collections.dgx_spark.cluster.plugins.module_utils import cluster_lock_io

NOW = 1700000000.0
HOLDER = "alice@laptop running start-cluster.yml"


def lock(owner="run-a", acquired=NOW - 100, renewed=None, expires=None, holder=HOLDER):
    renewed = acquired if renewed is None else renewed
    return dict(owner=owner, holder=holder, acquired_at=acquired, renewed_at=renewed,
                expires_at=renewed + 3600 if expires is None else expires, stale_after=3600, version=1)


def request(state="acquired", owner="run-b", **kw):
    base = dict(state=state, owner=owner, holder="bob@ci running start-cluster.yml", stale_after=3600,
                wait_timeout=600, waited=0, check_mode=False, path="/run/dgx-spark/cluster.lock")
    base.update(kw)
    return base


# --- acquire ---------------------------------------------------------------------------------------------------

def test_acquire_free_lock_writes_ours():
    out = core.decide(None, NOW, request())
    assert out["decision"] == core.ACQUIRE
    assert out["write"] == dict(owner="run-b", holder="bob@ci running start-cluster.yml", acquired_at=NOW,
                                renewed_at=NOW, expires_at=NOW + 3600, stale_after=3600, version=1)
    assert not out["remove"] and not out["warning"] and out["holder"] is None


def test_acquire_own_lock_renews_and_keeps_the_start():
    mine = lock(owner="run-b", acquired=NOW - 50)
    out = core.decide(mine, NOW, request(stale_after=1800))
    assert out["decision"] == core.RENEW
    assert out["write"]["acquired_at"] == NOW - 50
    assert out["write"]["renewed_at"] == NOW and out["write"]["expires_at"] == NOW + 1800
    assert not out["warning"]


def test_acquire_held_by_another_live_run_waits():
    out = core.decide(lock(), NOW, request(waited=10))
    assert out["decision"] == core.WAIT
    assert out["write"] is None and not out["remove"]
    assert HOLDER in out["msg"] and "run-a" in out["msg"]


def test_acquire_held_by_another_run_after_wait_timeout_refuses_naming_the_holder():
    out = core.decide(lock(), NOW, request(waited=600))
    assert out["decision"] == core.REFUSE and out["write"] is None
    assert HOLDER in out["msg"] and "run run-a" in out["msg"] and "waited 600 s" in out["msg"]
    assert "Nothing was changed by this run" in out["msg"] and "/run/dgx-spark/cluster.lock" in out["msg"]
    assert "stale at 2023-11-14T23:11:40Z" in out["msg"]  # its expiry: NOW - 100 + 3600


def test_acquire_with_wait_timeout_zero_refuses_at_once():
    assert core.decide(lock(), NOW, request(wait_timeout=0))["decision"] == core.REFUSE


def test_acquire_takes_over_an_expired_lock_with_a_warning_naming_the_old_holder():
    old = lock(acquired=NOW - 7200, expires=NOW - 1)
    out = core.decide(old, NOW, request())
    assert out["decision"] == core.TAKE_OVER
    assert out["write"]["owner"] == "run-b" and out["write"]["acquired_at"] == NOW
    assert out["holder"] == old
    assert HOLDER in out["warning"] and "run-a" in out["warning"] and "expired at" in out["warning"]


def test_acquire_takes_over_a_lock_not_renewed_for_the_requesters_stale_after():
    # Its own expiry is far away (written by a run with a huge stale_after), but ours is shorter.
    old = lock(acquired=NOW - 700, expires=NOW + 100000)
    out = core.decide(old, NOW, request(stale_after=600))
    assert out["decision"] == core.TAKE_OVER
    assert "last renewed 700 s ago (stale_after 600 s)" in out["warning"]


def test_acquire_exactly_at_expiry_takes_over():
    assert core.decide(lock(expires=NOW), NOW, request())["decision"] == core.TAKE_OVER


@pytest.mark.parametrize("mtime,decision", [(NOW - 10, core.WAIT), (NOW - 3600, core.TAKE_OVER), (None, core.TAKE_OVER)],
                         ids=["young unreadable file waits", "old unreadable file is taken over",
                              "unreadable file of unknown age is taken over"])
def test_acquire_over_an_unreadable_lock_file_goes_by_its_age(mtime, decision):
    out = core.decide(core.parse_lock("garbage", mtime), NOW, request())
    assert out["decision"] == decision
    if decision == core.TAKE_OVER:
        assert "not a lock of ours" in out["warning"]


def test_check_mode_held_by_another_run_reports_that_a_real_run_would_wait():
    out = core.decide(lock(), NOW, request(check_mode=True, waited=0))
    assert out["decision"] == core.WAIT and out["write"] is None
    assert "a real run would wait up to 600 s" in out["warning"] and HOLDER in out["warning"]


def test_check_mode_with_wait_timeout_zero_reports_that_a_real_run_would_refuse():
    out = core.decide(lock(), NOW, request(check_mode=True, wait_timeout=0))
    assert out["decision"] == core.WAIT
    assert "a real run would refuse to start" in out["warning"]


def test_check_mode_free_lock_decides_acquire_the_caller_writes_nothing():
    assert core.decide(None, NOW, request(check_mode=True))["decision"] == core.ACQUIRE


# --- release ---------------------------------------------------------------------------------------------------

def test_release_without_a_lock_is_not_held():
    out = core.decide(None, NOW, request(state="released"))
    assert out["decision"] == core.NOT_HELD and not out["remove"]


def test_release_of_our_lock_removes_it():
    out = core.decide(lock(owner="run-b"), NOW, request(state="released"))
    assert out["decision"] == core.RELEASE and out["remove"] and out["write"] is None


def test_release_of_another_runs_lock_leaves_it_and_names_the_holder():
    out = core.decide(lock(), NOW, request(state="released"))
    assert out["decision"] == core.NOT_MINE and not out["remove"]
    assert HOLDER in out["msg"] and "not by run run-b" in out["msg"]


def test_release_of_an_unreadable_lock_leaves_it():
    out = core.decide(core.parse_lock("{}", NOW), NOW, request(state="released"))
    assert out["decision"] == core.NOT_MINE and not out["remove"]


def test_release_without_owner_never_removes():
    out = core.decide(lock(owner=""), NOW, request(state="released", owner=None))
    assert out["decision"] == core.NOT_MINE and not out["remove"]


def test_every_decision_has_a_test_above():
    assert set(core.DECISIONS) == {core.ACQUIRE, core.RENEW, core.TAKE_OVER, core.WAIT, core.REFUSE, core.RELEASE,
                                   core.NOT_HELD, core.NOT_MINE}


# --- parsing ---------------------------------------------------------------------------------------------------

def test_parse_lock_round_trip():
    assert core.parse_lock(core.render_lock(lock()), NOW) == lock()


@pytest.mark.parametrize("text", ["", "not json", "[]", json.dumps({"holder": "x"}),
                                  json.dumps(dict(lock(), owner="")), json.dumps(dict(lock(), expires_at="soon")),
                                  json.dumps(dict(lock(), renewed_at=True))])
def test_parse_lock_refuses_what_is_not_a_lock_of_ours(text):
    assert core.parse_lock(text, 5.0) == {"unreadable": True, "mtime": 5.0}


def test_new_owner_is_random():
    assert len({core.new_owner() for _attempt in range(50)}) == 50


# --- wait loop (I/O layer) with a fake clock ---------------------------------------------------------------------

class Clock(object):
    def __init__(self, start=NOW):
        self.now, self.sleeps = start, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_run_waits_polling_then_refuses(tmp_path):
    lockdir = cluster_lock_io.LockDir(str(tmp_path / "cluster.lock"))
    lockdir.make()
    lockdir.write(lock(acquired=NOW - 1))
    clock = Clock()
    out = cluster_lock_io.run(lockdir, request(wait_timeout=5, poll_interval=2), clock=clock, sleep=clock.sleep)
    assert out["decision"] == core.REFUSE
    assert clock.sleeps == [2, 2, 1]
    assert out["waited"] == 5 and out["first_holder"]["owner"] == "run-a"
    assert lockdir.read()["owner"] == "run-a"


def test_run_acquires_when_the_holder_releases_during_the_wait(tmp_path):
    lockdir = cluster_lock_io.LockDir(str(tmp_path / "cluster.lock"))
    lockdir.make()
    lockdir.write(lock(acquired=NOW - 1))
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now - NOW >= 4:
            lockdir.remove()  # the other run finished

    out = cluster_lock_io.run(lockdir, request(wait_timeout=60, poll_interval=2), clock=clock, sleep=sleep)
    assert out["decision"] == core.ACQUIRE and out["waited"] == 4
    assert out["first_holder"]["holder"] == HOLDER
    assert lockdir.read()["owner"] == "run-b"


def test_run_in_check_mode_never_waits_nor_creates_the_directory(tmp_path):
    lockdir = cluster_lock_io.LockDir(str(tmp_path / "missing" / "cluster.lock"))
    clock = Clock()
    out = cluster_lock_io.run(lockdir, request(check_mode=True), clock=clock, sleep=clock.sleep)
    assert out["decision"] == core.ACQUIRE and not (tmp_path / "missing").exists() and clock.sleeps == []
