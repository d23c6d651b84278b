"""World-size invariance: the same config on 1, 2, 3, 4 workers follows the same trajectory, with
sync batch-norm and per-sample augmentation on; accumulation equals the un-accumulated run."""
import json

import pytest

from tests.parallel.helpers import max_diff, params, train


def test_float64_same_parameters_on_1_to_4_workers(in_tmp):
    ref = params(train(in_tmp, "w1", [], workers=1))
    for n in (2, 3, 4):
        out = train(in_tmp, f"w{n}", [], workers=n)
        assert max_diff(ref, params(out)) < 1e-12, f"{n} workers drifted"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["world_size"] == n and summary["steps"] == 6


def test_float32_same_parameters_to_1e5(in_tmp):
    sets = ["train.dtype=float32"]
    ref = params(train(in_tmp, "f1", sets, workers=1))
    assert max_diff(ref, params(train(in_tmp, "f3", sets, workers=3))) < 1e-5


def test_training_changes_parameters(in_tmp):
    """Guards the tests above against comparing two untrained models."""
    a = params(train(in_tmp, "s1", ["train.steps=1"]))
    b = params(train(in_tmp, "s6", ["train.steps=6"]))
    assert max_diff(a, b) > 1e-3


def test_accumulation_equals_unaccumulated(in_tmp):
    # batch-norm statistics depend on the micro-batch, so accumulation is checked on an MLP
    sets = ["model.name=mlp", "model.hidden=[16]", "model.dropout=0.2"]
    ref = params(train(in_tmp, "a1", sets, workers=2))
    acc = params(train(in_tmp, "a3", sets + ["train.accumulate_steps=3"], workers=2))
    assert max_diff(ref, acc) < 1e-12


def interrupt_after_first_checkpoint(out):
    """Make `out` look like a run killed after its step-3 checkpoint."""
    for name in ("model.npz", "summary.json", "checkpoints/step_000006.json",
                 "checkpoints/step_000006.npz"):
        (out / name).unlink()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_resume_is_bit_identical(in_tmp, dtype):
    sets = [f"train.dtype={dtype}", "optim.name=adamw", "optim.schedule=cosine", "optim.lr=0.01"]
    straight = params(train(in_tmp, "r", sets, workers=2))
    out = train(in_tmp, "rr", sets, workers=2)
    interrupt_after_first_checkpoint(out)
    resumed = params(train(in_tmp, "rr", sets, workers=2, extra=["--resume"]))
    assert max_diff(straight, resumed) == 0.0


def test_resume_on_another_world_size(in_tmp):
    straight = params(train(in_tmp, "x", [], workers=2))
    out = train(in_tmp, "xx", [], workers=2)
    interrupt_after_first_checkpoint(out)
    resumed = params(train(in_tmp, "xx", [], workers=3, extra=["--resume"]))
    assert max_diff(straight, resumed) < 1e-12
