"""The Ray parameter server against a real local Ray (one instance for the module): the same
training as the local backend, restarts from checkpoints, async mode, refusals."""
import glob
import os
import signal
import threading
import time

import pytest

from distbp.errors import UsageError
from distbp.train.ray_trainer import run_ray
from tests.ray.helpers import config, max_diff, params, run_dir, run_local

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny config trained by the local backend (2 processes, ring all-reduce)."""
    tmp = tmp_path_factory.mktemp("ray-ref")
    cfg = config("data.path=" + str(tmp / "data"))
    return cfg, params(run_local(tmp, "local", cfg))


def kill_worker_when(ray, out, rank, marker):
    """Kill worker `rank` of the running attempt once `marker` exists under `out` (once)."""
    deadline = time.time() + 120
    while not (out / marker).exists():
        if time.time() > deadline:
            return
        time.sleep(0.005)
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["name"].endswith(f"-worker-{rank}"):
            ray.kill(ray.get_actor(a["name"], namespace=a["namespace"]), no_restart=True)
            return


def test_same_parameters_as_local(ray_local, reference, tmp_path, shards=1):
    """One server shard (one round trip per step); two shards are the restart test's config."""
    cfg, ref = reference
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "ps_shards": shards}}
    out = run_dir(tmp_path, "ray", cfg)
    summary = run_ray(cfg, out)
    assert summary["backend"] == "ray" and summary["ps_shards"] == shards
    assert summary["steps"] == cfg["train"]["steps"] and summary["world_size"] == 2
    assert max_diff(params(out), ref) < 1e-12


def test_killed_worker_restarts_from_checkpoint_and_ends_identical(ray_local, reference,
                                                                   tmp_path):
    """Two server shards (push, then update with the global clip decision) and a restart: the
    parameters are still those of the uninterrupted local run."""
    cfg, ref = reference
    assert cfg["dist"]["ps_shards"] == 2
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "max_failures": 1}}
    out = run_dir(tmp_path, "ray", cfg)
    killer = threading.Thread(target=kill_worker_when,
                              args=(ray_local, out, 1, "checkpoints/step_000020.json"))
    killer.start()
    summary = run_ray(cfg, out)
    killer.join()
    assert summary["restarts"] == 1
    assert max_diff(params(out), ref) < 1e-12


def test_killed_worker_without_restarts_fails_naming_it(ray_local, reference, tmp_path):
    cfg, _ = reference
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray"}}
    cfg["train"] = {**cfg["train"], "steps": 100000}
    out = run_dir(tmp_path, "ray", cfg)
    killer = threading.Thread(target=kill_worker_when,
                              args=(ray_local, out, 1, "checkpoints/step_000020.json"))
    killer.start()
    with pytest.raises(RuntimeError, match=r"ray worker 1 died.*max_failures=0"):
        run_ray(cfg, out)
    killer.join()


def stop_a_worker_when(out, marker, stopped):
    """SIGSTOP one worker actor's process (title "ray::Worker.fit") once `marker` exists."""
    deadline = time.time() + 120
    while not (out / marker).exists() and time.time() < deadline:
        time.sleep(0.005)
    for stat in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            title = open(stat, "rb").read()
        except OSError:
            continue
        if title.startswith(b"ray::Worker.fit"):
            pid = int(stat.split("/")[2])
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
            return


def test_a_worker_that_stops_answering_is_named(ray_local, reference, tmp_path):
    """A hung worker (SIGSTOP) does not hang the job: the servers give up on it after
    dist.timeout and the run fails with one line naming it."""
    cfg, _ = reference
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "timeout": 5.0}}
    cfg["train"] = {**cfg["train"], "steps": 100000}
    out = run_dir(tmp_path, "ray", cfg)
    stopped = []
    stopper = threading.Thread(target=stop_a_worker_when,
                               args=(out, "checkpoints/step_000020.json", stopped))
    stopper.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=r"no gradient from worker\(s\) \[[01]\] after "
                                               r"dist.timeout=5s"):
            run_ray(cfg, out)
    finally:
        stopper.join()
        for pid in stopped:                      # the run killed its actors; make sure
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert stopped and time.monotonic() - t0 < 100


def test_async_mode_trains(ray_local, reference, tmp_path):
    cfg, _ = reference
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray", "max_staleness": 2},
           "train": {**cfg["train"], "clip_grad_norm": 0.0, "steps": 40}}
    out = run_dir(tmp_path, "ray", cfg)
    summary = run_ray(cfg, out)
    assert summary["mode"] == "async" and summary["steps"] == 40
    assert summary["final_loss"] < 2.0 and summary["test_accuracy"] > 0.3


def test_refusals_name_the_culprit(reference):
    cfg, _ = reference
    bn = {**cfg, "model": {**cfg["model"], "name": "deep_mlp", "batch_norm": True, "depth": 2}}
    with pytest.raises(UsageError, match="batch-norm layer"):
        run_ray(bn, "unused")
    clip_async = {**cfg, "dist": {**cfg["dist"], "max_staleness": 1}}
    with pytest.raises(UsageError, match="clip_grad_norm"):
        run_ray(clip_async, "unused")


def test_a_worker_that_raises_ends_the_job(ray_local, reference, tmp_path):
    """A NaN in the data makes the workers raise (train.nonfinite=stop) mid-run: the job ends
    at once with the workers' one-line error, and its actors are gone."""
    import numpy as np
    from distbp.data.parquet import write_table
    from distbp.train.build import PROBE_SAMPLES
    rng = np.random.default_rng(0)
    data = tmp_path / "nan_data"
    data.mkdir()
    for split, n in (("train", 64), ("test", 16)):
        x = rng.normal(size=(n, 16)).astype(np.float64)
        if split == "train":
            x[PROBE_SAMPLES:, 3] = np.nan   # all but the preflight's probe: the first step fails
        write_table(data / f"{split}.parquet", {"x": x, "y": rng.integers(0, 4, n)})
    cfg, _ = reference
    cfg = {**cfg, "dist": {**cfg["dist"], "backend": "ray"},
           "train": {**cfg["train"], "nonfinite": "stop", "steps": 100000},
           "data": {**cfg["data"], "name": "parquet", "path": str(data), "feature": "x",
                    "label": "y", "shape": [1, 16], "num_classes": 4, "augment": []}}
    out = run_dir(tmp_path, "ray", cfg)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"step \d+: gradient of '.*' is not finite"):
        run_ray(cfg, out)
    assert time.monotonic() - t0 < 60
    alive = [a for a in ray_local.util.list_named_actors(all_namespaces=True)
             if a["name"].startswith(out.name) or "-worker-" in a["name"]]
    assert alive == []
