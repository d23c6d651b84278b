"""Elastic membership across Ray nodes (distbp/ray/elastic.py) on a real multi-node Ray cluster on
this machine (ray.cluster_utils.Cluster: a head and worker nodes, each its own raylet): a node that
holds a worker goes away for good, the run waits below dist.min_workers, a new node joins, the run
grows back onto it at a step boundary and ends at the parameters of the uninterrupted run (float64,
1e-9); then a worker actor is killed as well, so the membership changes more than once."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from distbp.train.config import dump_config
from tests.ray.helpers import config, max_diff, params, run_local

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster
    from distbp.ray.launch import SYSTEM_CONFIG
    # Its own temp dir (short: socket paths): Cluster writes its address to
    # $RAY_TMPDIR/ray/ray_current_cluster, where any ray.init("auto") on the machine, another
    # test's included, would find it, and leaves it there after shutdown.
    temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    try:
        # One CPU on the head: worker 0 (pinned to the driver's node, with the parameter
        # servers); the second worker needs another node.
        c = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False, "_system_config": SYSTEM_CONFIG})
        ray.init(address=c.address, namespace="distbp", log_to_driver=False)
        yield ray, c
        ray.shutdown()
        c.shutdown()
    finally:
        if before is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = before
        shutil.rmtree(temp, ignore_errors=True)


def _records(out, kind):
    try:
        lines = (out / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _wait(condition, what, driver, seconds=120):
    end = time.monotonic() + seconds
    while not condition():
        if driver.poll() is not None:
            raise AssertionError(f"the run ended (exit {driver.returncode}) before {what}: "
                                 + Path(driver.log[1].name).read_text()[-3000:])
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}: "
                                 + Path(driver.log[1].name).read_text()[-3000:])
        time.sleep(0.01)


def test_a_node_goes_away_and_a_new_node_joins(cluster, tmp_path):
    """The driver is `distbp train --address` (a job joining the cluster); the test, on the
    cluster's main thread (Cluster starts nodes only there), takes nodes away and adds them."""
    ray, c = cluster
    node_a = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    cfg = config("data.path=" + str(tmp_path / "data"), "train.log_every=1",
                 "checkpoint.every_steps=0", "train.steps=600")
    ref = params(run_local(tmp_path, "local", cfg))
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "workers": 2, "min_workers": 2,
                           "max_workers": 2, "elastic_wait": 120.0}}
    dump_config(cfg, tmp_path / "elastic.yaml")
    out = tmp_path / "ray"
    # output to files: the workers' logs come to the driver, more than a pipe holds unread
    log = open(tmp_path / "driver.out", "w+"), open(tmp_path / "driver.err", "w+")
    driver = subprocess.Popen(
        [sys.executable, "-m", "distbp.cli", "train", "--config", str(tmp_path / "elastic.yaml"),
         "--address", c.address, "--out", str(out), "--quiet"], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log[0], stderr=log[1], text=True)
    driver.log = log
    try:
        steps = lambda: max((r["step"] for r in _records(out, "train")), default=0)  # noqa: E731
        _wait(lambda: steps() >= 20, "step 20", driver)
        # A synchronous step needs every member's gradient: the run cannot pass the step in
        # flight until the driver has regrouped, so nothing below races the run's end.
        c.remove_node(node_a, allow_graceful=False)
        removed_at = steps()
        node_b = c.add_node(num_cpus=1)     # below dist.min_workers=2 the driver waits for it
        _wait(lambda: len(_records(out, "membership")) >= 1, "the regroup onto the new node",
              driver)
        at = steps()
        _wait(lambda: steps() >= at + 20, "20 steps on the new membership", driver)
        victim = min((a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                      if "-worker-" in a["name"]), key=lambda n: int(n.rsplit("-", 1)[1]))
        ray.kill(ray.get_actor(victim, namespace="distbp"), no_restart=True)
        driver.wait(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    stdout, stderr = (tmp_path / "driver.out").read_text(), (tmp_path / "driver.err").read_text()
    assert driver.returncode == 0, stderr[-3000:]
    changes = _records(out, "membership")
    # each change: a member died (its node, then its actor), the run waited below min_workers=2
    # for a CPU (the new node's, then the one freed on the head) and went on with 2 again
    assert len(changes) == 2, changes
    assert all(r["old_world"] == 2 and r["new_world"] == 2 and "died" in r["cause"]
               and r["seconds"] >= 0 for r in changes), changes
    assert changes[0]["step"] >= removed_at and "membership: 2 -> 2" in stdout, stdout[-2000:]
    alive = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
    assert alive[node_b.node_id] and not alive[node_a.node_id]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == cfg["train"]["steps"] and summary["membership_changes"] == 2
    assert max_diff(params(out), ref) < 1e-9
