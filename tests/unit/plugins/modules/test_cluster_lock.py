"""cluster_lock module: main() with a patched AnsibleModule on a real temporary directory, and a race of two real
processes running the module's code at the same instant (only one may acquire)."""

import json
import multiprocessing
import os
import threading
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.dgx_spark.cluster.plugins.module_utils import cluster_lock_io
from ansible_collections.dgx_spark.cluster.plugins.modules import cluster_lock
from module_harness import ExitJson, FailJson, patch_exits  # noqa: E402  (sibling helper)

ALICE = "alice@laptop running start-cluster.yml"
BOB = "bob@ci running start-cluster.yml"


def run(monkeypatch, check_mode=False, **args):
    warnings = []
    patch_exits(monkeypatch, warnings)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as caught:
            cluster_lock.main()
    return caught.value.args[0], warnings


def content(path):
    with open(path) as handle:
        return json.load(handle)


def snapshot(directory):
    return sorted((name, os.stat(os.path.join(directory, name)).st_mtime, open(os.path.join(directory, name)).read())
                  for name in os.listdir(directory))


def test_acquire_then_release(monkeypatch, tmp_path):
    path = str(tmp_path / "dgx-spark" / "cluster.lock")
    got, warnings = run(monkeypatch, path=path, holder=ALICE)
    assert got["decision"] == "acquire" and got["acquired"] and not got["changed"] and not warnings
    assert content(path)["owner"] == got["owner"] and content(path)["holder"] == ALICE
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    released, warnings = run(monkeypatch, path=path, state="released", owner=got["owner"])
    assert released["decision"] == "release" and released["released"] and not released["changed"]
    assert not os.path.exists(path) and not warnings


def test_second_owner_waits_then_times_out_naming_the_holder(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    first, _w = run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    started = time.monotonic()
    second, _w = run(monkeypatch, path=path, owner="run-b", holder=BOB, wait_timeout=1, poll_interval=0.2)
    assert time.monotonic() - started >= 1
    assert second["failed"] and second["decision"] == "refuse" and not second["acquired"]
    assert ALICE in second["msg"] and "run run-a" in second["msg"] and "waited 1 s" in second["msg"]
    assert second["holder"]["owner"] == "run-a" and second["waited"] >= 1
    assert content(path)["owner"] == first["owner"] == "run-a"


def test_second_owner_waits_until_the_holder_releases_and_says_for_whom(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    timer = threading.Timer(0.6, os.unlink, [path])
    timer.start()
    try:
        got, warnings = run(monkeypatch, path=path, owner="run-b", holder=BOB, wait_timeout=30, poll_interval=0.1)
    finally:
        timer.cancel()
    assert got["decision"] == "acquire" and got["acquired"] and not got["changed"]
    assert got["waited"] >= 0.5 and got["waited_for"]["owner"] == "run-a"
    assert len(warnings) == 1 and warnings[0].startswith("waited ") and ALICE in warnings[0] and "run run-a" in warnings[0]
    assert content(path)["owner"] == "run-b"


def test_wait_timeout_zero_refuses_at_once(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    got, _w = run(monkeypatch, path=path, owner="run-b", wait_timeout=0)
    assert got["failed"] and got["waited"] < 1 and ALICE in got["msg"]


def test_stale_lock_is_taken_over_with_a_warning_naming_the_old_holder(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    old = dict(owner="run-a", holder=ALICE, acquired_at=time.time() - 7200, renewed_at=time.time() - 7200,
               expires_at=time.time() - 3600, stale_after=3600, version=1)
    with open(path, "w") as handle:
        json.dump(old, handle)
    got, warnings = run(monkeypatch, path=path, owner="run-b", holder=BOB, wait_timeout=0)
    assert got["decision"] == "take_over" and got["acquired"] and not got["changed"]
    assert got["taken_over"]["owner"] == "run-a"
    assert len(warnings) == 1 and "stale cluster lock held by " + ALICE in warnings[0] and "run run-a" in warnings[0]
    assert content(path)["owner"] == "run-b"


def test_release_by_another_owner_leaves_the_lock(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    before = snapshot(str(tmp_path))
    got, _w = run(monkeypatch, path=path, state="released", owner="run-b")
    assert got["decision"] == "not_mine" and not got["released"] and not got["changed"]
    assert ALICE in got["msg"]
    assert snapshot(str(tmp_path)) == before


def test_release_when_nothing_is_held(monkeypatch, tmp_path):
    got, _w = run(monkeypatch, path=str(tmp_path / "none" / "cluster.lock"), state="released", owner="run-a")
    assert got["decision"] == "not_held" and not got["changed"]


def test_release_needs_an_owner(monkeypatch, tmp_path):
    got, _w = run(monkeypatch, path=str(tmp_path / "cluster.lock"), state="released")
    assert got["failed"] and "owner" in got["msg"]


def test_acquire_twice_by_the_same_run_renews(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    before = content(path)
    time.sleep(0.01)
    again, _w = run(monkeypatch, path=path, owner="run-a", holder=ALICE, wait_timeout=0)
    assert again["decision"] == "renew" and again["acquired"] and not again["changed"]
    after = content(path)
    assert after["owner"] == "run-a" and after["acquired_at"] == before["acquired_at"]
    assert after["expires_at"] > before["expires_at"]


def test_check_mode_acquire_writes_nothing_not_even_the_directory(monkeypatch, tmp_path):
    path = str(tmp_path / "dgx-spark" / "cluster.lock")
    got, warnings = run(monkeypatch, check_mode=True, path=path)
    assert got["decision"] == "acquire" and not got["acquired"] and not got["changed"] and not warnings
    assert os.listdir(str(tmp_path)) == []


def test_check_mode_acquire_reports_the_holder_and_does_not_wait(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    before = snapshot(str(tmp_path))
    started = time.monotonic()
    got, warnings = run(monkeypatch, check_mode=True, path=path, owner="run-b", wait_timeout=600)
    assert time.monotonic() - started < 5
    assert got["decision"] == "wait" and not got["acquired"] and not got.get("failed") and not got["changed"]
    assert got["holder"]["owner"] == "run-a"
    assert len(warnings) == 1 and ALICE in warnings[0] and "a real run would wait up to 600 s" in warnings[0]
    assert snapshot(str(tmp_path)) == before


def test_check_mode_release_removes_nothing(monkeypatch, tmp_path):
    path = str(tmp_path / "cluster.lock")
    run(monkeypatch, path=path, owner="run-a", holder=ALICE)
    before = snapshot(str(tmp_path))
    got, _w = run(monkeypatch, check_mode=True, path=path, state="released", owner="run-a")
    assert got["decision"] == "release" and not got["released"]
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("args,word", [(dict(stale_after=59), "stale_after"), (dict(wait_timeout=-1), "wait_timeout"),
                                       (dict(poll_interval=0), "poll_interval")])
def test_bounds(monkeypatch, tmp_path, args, word):
    got, _w = run(monkeypatch, path=str(tmp_path / "cluster.lock"), **args)
    assert got["failed"] and word in got["msg"] and not os.listdir(str(tmp_path))


# --- race: two real processes -----------------------------------------------------------------------------------

def _contender(path, owner, barrier, results, guarded=True):
    warnings = []
    monkeypatch = pytest.MonkeyPatch()
    patch_exits(monkeypatch, warnings)
    read = cluster_lock_io.LockDir.read

    def slow_read(self):
        found = read(self)
        time.sleep(0.05)  # widen the read-decide-write window: without the guard both would read "free"
        return found

    monkeypatch.setattr(cluster_lock_io.LockDir, "read", slow_read)
    if not guarded:
        monkeypatch.setattr(cluster_lock_io.fcntl, "flock", lambda fd, op: None)
    barrier.wait()
    try:
        with patch_module_args(dict(path=path, owner=owner, holder=owner, wait_timeout=0)):
            cluster_lock.main()
    except (ExitJson, FailJson) as exc:
        results.put((owner, exc.args[0].get("acquired", False), exc.args[0].get("decision")))
    finally:
        monkeypatch.undo()


def race(path, guarded=True):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    procs = [context.Process(target=_contender, args=(path, owner, barrier, results, guarded)) for owner in ("a", "b")]
    for proc in procs:
        proc.start()
    outcome = sorted(results.get(timeout=30) for _proc in procs)
    for proc in procs:
        proc.join(timeout=30)
    return outcome


def test_the_race_below_is_real_without_the_guard(tmp_path):
    outcome = race(str(tmp_path / "cluster.lock"), guarded=False)
    assert [acquired for _o, acquired, _d in outcome] == [True, True], outcome


def test_two_processes_at_the_same_instant_cannot_both_acquire(tmp_path):
    for attempt in range(10):
        path = str(tmp_path / ("round-%d" % attempt) / "cluster.lock")
        outcome = race(path)
        winners = [owner for owner, acquired, _decision in outcome if acquired]
        assert len(winners) == 1, outcome
        assert sorted(decision for _o, _a, decision in outcome) == ["acquire", "refuse"], outcome
        assert content(path)["owner"] == winners[0]
