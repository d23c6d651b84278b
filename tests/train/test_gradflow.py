"""The gradient-flow demo configs show the effect they are shipped for, through the real CLI.

The configs train on MNIST-1D; here they run a few steps on the small built-in `synthetic` set
instead (vanishing gradients come from depth, not from the data), so the test takes seconds.
"""
import json
from pathlib import Path

import pytest

from distbp.cli import main as distbp_main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STEPS = 10


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "synthetic"
    assert distbp_main(["data", "prepare", "synthetic", "--out", str(path)]) == 0
    return path


def train(config, out, data_dir, *sets):
    argv = ["train", "--config", str(CONFIGS / config), "--out", str(out), "--workers", "1",
            "--quiet", "--set", "data.name=synthetic", "--set", f"data.path={data_dir}",
            "--set", f"train.steps={STEPS}", "--set", f"train.log_every={STEPS}",
            "--set", "train.eval_every=0"]
    for s in sets:
        argv += ["--set", s]
    assert distbp_main(argv) == 0
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def layers_at(records, step):
    (rec,) = [r for r in records if r["kind"] == "train" and r["step"] == step]
    return rec["layers"]


def test_plain_net_vanishes_where_residual_net_does_not(tmp_path, data_dir):
    plain = layers_at(train("gradflow_plain.yaml", tmp_path / "plain", data_dir), STEPS)
    residual = layers_at(train("gradflow_residual.yaml", tmp_path / "residual", data_dir), STEPS)
    first, last = "stem.weight", "head.weight"
    assert list(plain)[0] == first and list(residual)[0] == first     # forward order, input first
    ratio = residual[first]["grad_norm"] / plain[first]["grad_norm"]
    assert ratio >= 100, f"first-layer gradient only {ratio:.3g}x smaller in the plain net"
    # it is depth that starves the plain net: its output layer still gets a healthy gradient ...
    assert plain[first]["grad_norm"] < 1e-3 * plain[last]["grad_norm"]
    # ... while every layer of the residual net gets one of the same order as the others
    blocks = [v["grad_norm"] for k, v in residual.items() if k.endswith("linear.weight")]
    assert len(blocks) == 20 and min(blocks) > 0.05 * max(blocks)


def test_clipped_config_clips_the_reduced_gradient(tmp_path, data_dir):
    # log every step: the per-layer norms are recorded after clipping, the global norm before
    records = train("gradflow_clipped.yaml", tmp_path / "clipped", data_dir,
                    "train.clip_grad_norm=0.05", "train.log_every=1")
    clipped = [r for r in records if r["kind"] == "train" and r["grad_norm"] > 0.05]
    assert clipped, "no step had a gradient norm above the clip threshold"
    for r in clipped:
        total = sum(v["grad_norm"] ** 2 for v in r["layers"].values()) ** 0.5
        assert total == pytest.approx(0.05, rel=1e-3)
