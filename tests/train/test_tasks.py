"""The losses and targets train.loss picks (distbp/train/tasks.py): BCE-with-logits against torch,
targets that do not fit a loss refused with the key to change, the user-loss reduction checks."""
import numpy as np
import pytest

import distbp
from distbp import nn
from distbp.errors import UsageError
from distbp.train import tasks
from tests.opcheck import check, const


def bce(m, x, y, reduction="mean", scale=1.0):
    f = m.F.binary_cross_entropy_with_logits
    return f(x * scale, y, reduction=reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 40.0])           # 40: logits far past exp's float range
def test_bce_with_logits_matches_torch(reduction, scale):
    targets = const(np.random.default_rng(3).uniform(0, 1, (5, 3)))
    check(lambda m, x, y: bce(m, x, y, reduction, scale), (5, 3), targets)


def test_targets_that_do_not_fit_the_loss_name_the_keys():
    reg = {"task": "regression", "target_shape": (2,), "num_outputs": 2}
    with pytest.raises(UsageError, match="train.loss=cross_entropy needs integer class labels"):
        tasks.build_task("cross_entropy", reg)
    with pytest.raises(UsageError, match="does not fit a text data set"):
        tasks.build_task("mse", {"task": "lm", "target_shape": (16,)})
    with pytest.raises(UsageError, match="targets of shape \\[2, 2\\]"):
        tasks.build_task("mse", {**reg, "target_shape": (2, 2)})
    task = tasks.build_task("bce_with_logits", reg)
    with pytest.raises(UsageError, match="must lie in \\[0, 1\\]"):
        task.check_targets(np.array([[0.0, 2.0]]))
    with pytest.raises(UsageError, match="has 3 values per sample but the targets have 2"):
        task.align(distbp.zeros(4, 3), np.zeros((4, 2)))
    cls = tasks.build_task("cross_entropy", {"task": "classification", "target_shape": (),
                                             "num_outputs": 3, "num_classes": 3})
    with pytest.raises(UsageError, match="labels must lie in \\[0, 3\\)"):
        cls.check_targets(np.array([0, 3]))


def test_a_scalar_target_is_aligned_not_broadcast():
    """(N, 1) output against (N,) targets: torch's mse_loss would broadcast to (N, N)."""
    task = tasks.build_task("mse", {"task": "regression", "target_shape": (), "num_outputs": 1})
    out, y = task.align(distbp.tensor(np.arange(4.0).reshape(4, 1)), np.arange(4.0))
    assert tuple(out.shape) == (4, 1) and y.shape == (4, 1)
    assert float(task.loss(out, y).item()) == 0.0


def test_user_losses_must_sum_over_the_batch():
    out, y = distbp.tensor(np.arange(6.0).reshape(3, 2)), np.ones((3, 2))
    with pytest.raises(UsageError, match="reduction='mean'"):
        tasks.sum_reduced(nn.MSELoss())
    per_sample = tasks.sum_reduced(nn.MSELoss(reduction="none"))
    summed = tasks.sum_reduced(nn.MSELoss(reduction="sum"))
    assert float(per_sample(out, y).item()) == float(summed(out, y).item()) == 31.0
    tasks.check_additive(per_sample, out, y)
    with pytest.raises(UsageError, match="looks like a mean"):
        tasks.check_additive(tasks.sum_reduced(lambda o, t: ((o - t) * (o - t)).mean()), out, y)
