"""Schedulers against torch.optim.lr_scheduler: the same lr sequence over 25 steps."""
import math

import numpy as np
import pytest
import torch

from distbp import optim
from distbp.nn import Parameter
from distbp.optim import lr_scheduler as sched

STEPS = 25


def pair(lrs=(0.1, 0.02)):
    ours = optim.SGD([{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs], lr=1.0,
                     momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr}
                              for lr in lrs], lr=1.0, momentum=0.9)
    return ours, theirs


def sequence(opt, scheduler):
    out = [scheduler.get_last_lr()]
    for _ in range(STEPS):
        opt.step()
        scheduler.step()
        out.append(scheduler.get_last_lr())
        assert out[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(out)


def torch_sequence(opt, scheduler):
    out = [scheduler.get_last_lr()]
    for _ in range(STEPS):
        opt.step()
        scheduler.step()
        out.append(scheduler.get_last_lr())
    return np.array(out)


MAKERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 10, 11], gamma=0.3),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.9 ** e),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=7),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=4),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=10, power=2.0),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.95),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                              eta_min=0.001),
    "CosineAnnealingWarmRestarts1": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=STEPS),
    "OneCycleLR3": lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=5, steps_per_epoch=5,
                                             anneal_strategy="linear", three_phase=True),
    "CyclicLR": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "CyclicLR2": lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=3, step_size_down=5,
                                         mode="triangular2"),
    "CyclicLRexp": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="exp_range",
                                           gamma=0.9),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.1, total_iters=3), m.ExponentialLR(o, gamma=0.9),
         m.StepLR(o, 4, 0.5)]),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_lr_sequence_matches_torch(name):
    ours, theirs = pair()
    got = sequence(ours, MAKERS[name](sched, ours))
    want = torch_sequence(theirs, MAKERS[name](torch.optim.lr_scheduler, theirs))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # the cyclic schedulers also cycle SGD's momentum
    np.testing.assert_allclose([g["momentum"] for g in ours.param_groups],
                               [g["momentum"] for g in theirs.param_groups], rtol=1e-12)


@pytest.mark.parametrize("maker", [
    lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=STEPS, base_momentum=0.8),
    lambda m, o: m.CyclicLR(o, base_lr=1e-4, max_lr=1e-2, step_size_up=5)])
def test_cyclic_schedulers_cycle_adams_beta1(maker):
    ours = optim.Adam([Parameter(np.zeros(2))], lr=1e-3)
    theirs = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=1e-3)
    s, ts = maker(sched, ours), maker(torch.optim.lr_scheduler, theirs)
    for _ in range(STEPS - 1):
        ours.step(), theirs.step(), s.step(), ts.step()
        assert ours.param_groups[0]["betas"] == pytest.approx(theirs.param_groups[0]["betas"])
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("kwargs", [dict(), dict(mode="max", factor=0.5, patience=2, cooldown=1),
                                    dict(threshold_mode="abs", threshold=0.1, patience=1,
                                         min_lr=[0.05, 0.015])])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    ours, theirs = pair()
    s = sched.ReduceLROnPlateau(ours, **kwargs)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.94, 0.96, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88] * 3
    for m in metrics:
        s.step(m)
        ts.step(m)
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    assert s.get_last_lr() != [0.1, 0.02]


def test_warmup_cosine_equals_torch_lambda():
    warmup, total, base, min_lr = 5, 20, 0.1, 0.01
    ours = optim.SGD([Parameter(np.zeros(2))], lr=base)
    got = sequence(ours, sched.WarmupCosine(ours, warmup, total, min_lr=min_lr))

    def factor(s):
        if s < warmup:
            return (s + 1) / warmup
        if s >= total:
            return min_lr / base
        cos = (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) / 2
        return (min_lr + (base - min_lr) * cos) / base

    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=base)
    want = torch_sequence(theirs, torch.optim.lr_scheduler.LambdaLR(theirs, factor))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0, 0] == pytest.approx(base / warmup)
    assert got[warmup, 0] == pytest.approx(base)
    assert got[-1, 0] == pytest.approx(min_lr)


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "SequentialLR", "LambdaLR",
                                  "OneCycleLR", "CyclicLR", "CosineAnnealingWarmRestarts",
                                  "ChainedScheduler"])
def test_state_dict_round_trip(name):
    ours, _ = pair()
    s = MAKERS[name](sched, ours)
    for _ in range(7):
        s.step()
    sd = s.state_dict()
    assert not any(callable(v) for v in sd.values())
    ours2, _ = pair()
    s2 = MAKERS[name](sched, ours2)  # torch's resume order: build, then load both states
    ours2.load_state_dict(ours.state_dict())
    s2.load_state_dict(sd)
    for _ in range(5):
        s.step()
        s2.step()
        assert s.get_last_lr() == s2.get_last_lr()


def test_bad_arguments():
    ours, _ = pair()
    with pytest.raises(ValueError, match="warmup_steps"):
        sched.WarmupCosine(ours, 10, 5)
    with pytest.raises(ValueError, match="2 schedulers and 0 milestones"):
        sched.SequentialLR(ours, [sched.StepLR(ours, 2), sched.StepLR(ours, 3)], milestones=[])
    with pytest.raises(ValueError, match="3 lr_lambdas for 2 param groups"):
        sched.LambdaLR(ours, [lambda e: 1.0] * 3)
