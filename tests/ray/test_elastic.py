"""Elastic membership on a real local Ray (distbp/ray/elastic.py): worker actors killed mid-run,
twice; the run shrinks, grows back when the CPU is free again, and ends at the parameters of the
uninterrupted run (float64, 1e-9). Below dist.min_workers with no free CPU it waits
dist.elastic_wait, then ends naming what it waited for."""
import json
import threading
import time

import pytest

from distbp.train.ray_trainer import run_ray
from tests.ray.helpers import config, max_diff, params, run_dir, run_local

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


@pytest.fixture(scope="module")
def ray3():
    ray = pytest.importorskip("ray")
    from distbp.ray.launch import SYSTEM_CONFIG
    ray.init(address="local", num_cpus=3, include_dashboard=False, namespace="distbp",
             log_to_driver=False, _system_config=SYSTEM_CONFIG)
    yield ray
    ray.shutdown()


def _steps_done(out):
    try:
        lines = (out / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    steps = [json.loads(x)["step"] for x in lines if '"kind": "train"' in x]
    return max(steps, default=0)


def _worker_names(ray):
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if "-worker-" in a["name"]}


def _kill_at(ray, out, steps, killed, stale):
    """Kill the oldest live worker actor of this run (rank 0, a member for sure: a younger actor
    may still be joining) once the run has logged each of `steps`. `stale`: names listed before
    the run (a killed actor's name is released later; the last test's could still be listed)."""
    for target in steps:
        deadline = time.time() + 150
        while _steps_done(out) < target and time.time() < deadline:
            time.sleep(0.01)
        names = sorted(_worker_names(ray) - stale - {v for v, _ in killed},
                       key=lambda n: int(n.rsplit("-", 1)[1]))
        victim = names[0]
        ray.kill(ray.get_actor(victim, namespace="distbp"), no_restart=True)
        killed.append((victim, _steps_done(out)))


def test_killed_workers_shrink_and_grow_back_and_end_identical(ray3, tmp_path):
    cfg = config("data.path=" + str(tmp_path / "data"), "train.log_every=1",
                 "checkpoint.every_steps=0")
    ref = params(run_local(tmp_path, "local", cfg))
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "workers": 3, "min_workers": 1,
                           "max_workers": 3, "elastic_wait": 30.0}}
    out = run_dir(tmp_path, "ray", cfg)
    killed = []
    killer = threading.Thread(target=_kill_at, args=(ray3, out, (20, 60), killed,
                                                     _worker_names(ray3)))
    killer.start()
    summary = run_ray(cfg, out)
    killer.join()
    assert len(killed) == 2
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    changes = [r for r in records if r["kind"] == "membership"]
    deaths = [r for r in changes if "died" in r["cause"]]
    back = [r for r in changes if r["new_world"] == 3 or "capacity" in r["cause"]]
    # one regroup per kill; a joiner ready at the same boundary is admitted in it (seen under
    # load: "2 -> 2 worker(s) at step 61 (worker 0 died ...)"), so a death need not shrink
    assert len(deaths) == 2 and deaths[0]["new_world"] < deaths[0]["old_world"], changes
    assert back and changes[-1]["new_world"] >= 2, changes
    assert all(r["seconds"] >= 0 and set(r) >= {"step", "old_world", "new_world", "seconds"}
               for r in changes)
    # every step trained once (the parameters below); only the log record of a step whose
    # rank 0 died before writing it can be missing: at most one per kill (each kill is of rank 0)
    logged = {r["step"] for r in records if r["kind"] == "train"}
    assert len(set(range(1, cfg["train"]["steps"] + 1)) - logged) <= len(killed)
    assert summary["steps"] == cfg["train"]["steps"] and summary["membership_changes"] >= 2
    assert max_diff(params(out), ref) < 1e-9


def test_below_min_workers_waits_then_names_what_it_waited_for(ray3, tmp_path):
    """Two workers, min 2; a third CPU is taken by another actor, then one worker is killed:
    no CPU is free for a replacement, so after dist.elastic_wait the run ends naming it."""
    cfg = config("data.path=" + str(tmp_path / "data"), "train.log_every=1",
                 "train.steps=100000")
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "workers": 2, "min_workers": 2,
                           "elastic_wait": 2.0}}
    out = run_dir(tmp_path, "ray", cfg)

    @ray3.remote(num_cpus=1)
    class Hog:
        def ping(self):
            return 1

    hog = Hog.remote()
    ray3.get(hog.ping.remote())
    killed, hog2 = [], []

    stale = _worker_names(ray3)

    def kill_and_take():
        _kill_at(ray3, out, (10,), killed, stale)
        h = Hog.remote()            # queued for the freed CPU before the driver sees the death
        hog2.append(h)
    killer = threading.Thread(target=kill_and_take)
    killer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=r"waited dist.elastic_wait=2s for 1 more to "
                                               r"reach dist.min_workers=2"):
            run_ray(cfg, out)
    finally:
        killer.join()
        for h in [hog] + hog2:
            ray3.kill(h)
    assert time.monotonic() - t0 < 90
