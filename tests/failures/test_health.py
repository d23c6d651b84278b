"""Training health: non-finite gradients are found after the reduction (so every rank decides the
same), then skipped and counted or the run stops naming the first non-finite layer; the global
gradient norm is logged and a threshold warns.

The non-finite gradient comes from the data: one training row of a Parquet set holds a NaN feature,
so exactly the steps whose global batch contains that row go non-finite.
"""
import json

import numpy as np
import pytest

import distbp
from distbp.data import DistributedLoader, open_split
from distbp.data.parquet import write_table
from distbp.models import build_model
from distbp.train.config import load_config
from tests.failures.helpers import Run, write_config

NAN_ROW = 37
DATA = {"name": "parquet", "path": "nan_data", "feature": "x", "label": "y", "shape": [1, 16],
        "num_classes": 4}
STEPS = 40


@pytest.fixture
def nan_data(tmp_path):
    """Gaussian blobs (4 classes, 16 dims, 240 train / 48 test rows), train row NAN_ROW has a NaN."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, (4, 16))
    for split, n in (("train", 240), ("test", 48)):
        y = rng.integers(0, 4, n)
        x = (centers[y] + rng.normal(0, 1, (n, 16))).astype(np.float32)
        if split == "train":
            x[NAN_ROW, 3] = np.nan
        (tmp_path / "nan_data").mkdir(exist_ok=True)
        write_table(tmp_path / "nan_data" / f"{split}.parquet", {"x": x, "y": y.astype(np.int64)})
    return tmp_path


def run_train(cwd, workers, nonfinite, warn=0.0, dtype="float64"):
    cfg = write_config(cwd, f"health_{workers}_{nonfinite}.yaml", data=DATA,
                       train={"steps": STEPS, "log_every": 1, "nonfinite": nonfinite,
                              "warn_grad_norm": warn, "dtype": dtype},
                       dist={"workers": workers, "timeout": 20.0})
    out = f"out_{workers}_{nonfinite}"
    run = Run(cwd, ["--config", cfg, "--out", out, "--force"])
    rc, err = run.finish(180)
    return rc, run.stdout, err, cwd / out, cfg


def nan_steps(cfg_path, cwd):
    """Steps (0-based) whose global batch holds the NaN row, from the data layer's own schedule."""
    import os
    old = os.getcwd()
    os.chdir(cwd)
    try:
        cfg = load_config(cfg_path)
        ds = open_split(cfg["data"], "train")
        loader = DistributedLoader(ds, cfg["train"]["global_batch_size"], seed=cfg["train"]["seed"])
        return [s for s in range(STEPS) if NAN_ROW in loader.global_indices(s)], cfg, ds
    finally:
        os.chdir(old)


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def params(out):
    with np.load(out / "model.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_nonfinite_skip_counts_and_every_rank_agrees(nan_data):
    """2 workers hold the NaN row on one rank only; after the reduction both skip the same steps,
    so the result equals the 1-worker run's, and the skips are counted and logged."""
    rc1, out1, err1, dir1, cfg = run_train(nan_data, 1, "skip", warn=1.0)
    rc2, out2, err2, dir2, _ = run_train(nan_data, 2, "skip")
    assert rc1 == 0, err1[-3000:]
    assert rc2 == 0, err2[-3000:]
    bad, _, _ = nan_steps(cfg, nan_data)
    assert 0 < len(bad) < STEPS // 2
    for out, d in ((out1, dir1), (out2, dir2)):
        train = [m for m in metrics(d) if m["kind"] == "train"]
        assert [m["step"] - 1 for m in train if np.isnan(m["grad_norm"])] == bad
        assert train[-1]["skipped_steps"] == len(bad)
        assert json.loads((d / "summary.json").read_text())["skipped_steps"] == len(bad)
        assert out.count("step skipped") == len(bad)
    p1, p2 = params(dir1), params(dir2)
    assert all(np.isfinite(v).all() for v in p2.values())
    assert max(float(np.abs(p1[k] - p2[k]).max()) for k in p1) < 1e-10

    # the global gradient norm is logged every step; the threshold warns exactly above it
    norms = {m["step"] - 1: m["grad_norm"] for m in metrics(dir1) if m["kind"] == "train"}
    above = [s for s, n in norms.items() if n > 1.0]
    warned = [int(line.split("step ")[1].split(":")[0]) for line in out1.splitlines()
              if "exceeds train.warn_grad_norm=1" in line]
    assert 0 < len(above) < STEPS - len(bad)
    assert warned == above
    assert "exploding gradients?" in out1


def test_nonfinite_stop_names_first_layer(nan_data):
    rc, out, err, _, cfg = run_train(nan_data, 2, "stop", dtype="float32")
    assert rc not in (0, None), err[-3000:]
    bad, c, ds = nan_steps(cfg, nan_data)
    distbp.manual_seed(0)
    first = next(iter(build_model(c["model"], ds.describe()).named_parameters()))[0]
    assert f"step {bad[0]}: gradient of {first!r} is not finite (train.nonfinite=stop)" in err, \
        err[-3000:]
    assert "lower optim.lr or set train.clip_grad_norm" in err


def test_a_slow_rank_shows_in_metrics_and_plot(runs, work):
    """Rank 1 sleeps 20 ms before each step: the others wait for it at the step's first
    collective, so metrics.jsonl's wait_p50_ms names it (it waits ~0, rank 0 ~20 ms), last_rank
    is 1, and `distbp plot` draws the stragglers figure."""
    from distbp.cli import main as distbp_main
    cfg = write_config(work, train={"steps": 30, "log_every": 10}, dist={"workers": 2})
    run = runs(work, ["--config", cfg, "--out", "slow", "--force"], fault="slow:1:20")
    rc, err = run.finish(120)
    assert rc == 0, err[-2000:]
    logged = [r for r in map(json.loads, (run.out / "metrics.jsonl").read_text().splitlines())
              if r.get("kind") == "train"]
    assert len(logged) == 3 and all(r["last_rank"] == 1 for r in logged), logged
    for r in logged:
        assert r["wait_p50_ms"][0] > 10 and r["wait_p50_ms"][1] < 5, r
    assert distbp_main(["plot", str(run.out)]) == 0
    assert (run.out / "plots" / "stragglers.png").stat().st_size > 1000
