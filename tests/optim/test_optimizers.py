"""SGD, Adam and AdamW against torch.optim: same params, same gradient sequence, float64."""
import json

import numpy as np
import pytest
import torch

from distbp import optim
from distbp.nn import Parameter

SHAPES = [(4, 3), (3,), (2, 2, 3)]


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def fake_grads(params_np, step):
    """Gradients that depend on the current parameters (so trajectories diverge if updates do)."""
    rng = np.random.default_rng(100 + step)
    return [np.sin(p) + 0.5 * rng.standard_normal(p.shape) for p in params_np]


def run(ours, theirs, opt, topt, steps, start=0):
    for step in range(start, start + steps):
        grads = fake_grads([p.data for p in ours], step)
        for p, tp, g in zip(ours, theirs, grads):
            p.grad = g.copy()
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()


def assert_same(ours, theirs, tol=1e-10):
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=tol, atol=tol)


def tol_for(name):
    """torch keeps ASGD's eta/mu and NAdam's mu_product as float32 scalars whatever the
    parameters' dtype (distbp: python floats), which shows at ~1e-9 after 10 steps."""
    return 1e-7 if name in ("ASGD", "NAdam") else 1e-10


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=0.01)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1), maximize=True)),
    ("ASGD", dict(lr=0.01)),
    ("ASGD", dict(lr=0.01, lambd=0.01, t0=3, weight_decay=0.1)),
    ("Adafactor", dict(lr=0.01)),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-3), d=1.5, weight_decay=0.1,
                       maximize=True)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_torch_after_10_steps(name, kwargs):
    ours, theirs = make_params()
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    run(ours, theirs, opt, topt, 10)
    assert_same(ours, theirs, tol=tol_for(name))


def test_param_groups_with_own_hyperparameters():
    ours, theirs = make_params()
    opt = optim.SGD([{"params": ours[:1], "lr": 0.5}, {"params": ours[1:]}], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([{"params": theirs[:1], "lr": 0.5}, {"params": theirs[1:]}], lr=0.1,
                           momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[1]["lr"] == 0.1
    run(ours, theirs, opt, topt, 10)
    assert_same(ours, theirs)


def test_params_without_grad_are_skipped():
    ours, theirs = make_params()
    opt, topt = optim.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    before = ours[1].data.copy()
    ours[0].grad, theirs[0].grad = np.ones(SHAPES[0]), torch.ones(SHAPES[0], dtype=torch.float64)
    opt.step()
    topt.step()
    assert_same(ours, theirs)
    np.testing.assert_array_equal(ours[1].data, before)
    assert ours[1] not in opt.state


def test_update_is_in_place():
    ours, _ = make_params()
    view = ours[0].data
    opt = optim.SGD(ours, lr=0.1, momentum=0.9)
    ours[0].grad = np.ones(SHAPES[0])
    opt.step()
    assert ours[0].data is view


def test_zero_grad():
    ours, _ = make_params()
    opt = optim.SGD(ours, lr=0.1)
    for p in ours:
        p.grad = np.ones(p.data.shape)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ours)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)


def json_round_trip(sd):
    """What a checkpoint does: arrays aside (npz), the rest through JSON (int keys become str)."""
    arrays = {(i, k): v for i, s in sd["state"].items() for k, v in s.items()
              if isinstance(v, np.ndarray)}
    rest = {"state": {i: {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
                      for i, s in sd["state"].items()},
            "param_groups": sd["param_groups"]}
    back = json.loads(json.dumps(rest))
    for (i, k), v in arrays.items():
        back["state"][str(i)][k] = v.copy()
    return back


ROUND_TRIP = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.01, amsgrad=True)),
              ("Adafactor", dict(lr=0.01)),
              ("AdamW", dict(lr=0.01)), ("Adagrad", dict(lr=0.1)), ("Adadelta", dict(lr=0.5)),
              ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)), ("Adamax", dict(lr=0.01)),
              ("NAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01)), ("Rprop", dict(lr=0.01)),
              ("ASGD", dict(lr=0.01, t0=2))]


@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_state_dict_round_trip_continues_identically(name, kwargs):
    ours, theirs = make_params()
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    run(ours, theirs, opt, topt, 5)
    sd = opt.state_dict()
    assert sorted(sd["state"][0]) == sorted(topt.state_dict()["state"][0])
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    # a fresh optimizer on a copy of the parameters, resumed from the (JSON-ed) state
    resumed_params = [Parameter(p.data.copy()) for p in ours]
    resumed = getattr(optim, name)(resumed_params, lr=123.0)
    resumed.load_state_dict(json_round_trip(sd))
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]
    run(ours, theirs, opt, topt, 5, start=5)
    run(resumed_params, [torch.tensor(p.data) for p in resumed_params], resumed,
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0), 5, start=5)
    for a, b in zip(ours, resumed_params):
        np.testing.assert_array_equal(a.data, b.data)
    assert_same(ours, theirs, tol=tol_for(name))


def test_state_dict_is_a_copy():
    ours, _ = make_params()
    opt = optim.SGD(ours, lr=0.1, momentum=0.9)
    for p in ours:
        p.grad = np.ones(p.data.shape)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][...] = 7
    assert not (opt.state[ours[0]]["momentum_buffer"] == 7).any()


def test_load_state_dict_errors():
    ours, _ = make_params()
    opt = optim.Adam(ours)
    for p in ours:
        p.grad = np.ones(p.data.shape)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="has 3 parameters, optimizer has 2"):
        optim.Adam(ours[:2]).load_state_dict(sd)
    other = [Parameter(np.zeros((5,))), *ours[1:]]
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(4, 3\)"):
        optim.Adam(other).load_state_dict(sd)


def test_bad_arguments_name_the_culprit():
    ours, _ = make_params()
    with pytest.raises(ValueError, match="lr=-1"):
        optim.SGD(ours, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(ours, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(ours, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="already appears"):
        optim.SGD([{"params": ours}, {"params": ours[:1]}], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


@pytest.mark.parametrize("kwargs", [dict(lr=0.02), dict(lr=0.02, nesterov=False, weight_decay=0.0,
                                                        adjust_lr_fn="match_rms_adamw")])
def test_muon_matches_torch_to_bfloat16_precision(kwargs):
    """torch runs Muon's Newton-Schulz iterations in bfloat16, distbp in float64: the trajectories
    agree to bfloat16's ~3 significant digits."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 3)), rng.standard_normal((3, 5))]
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt, topt = optim.Muon(ours, **kwargs), torch.optim.Muon(theirs, **kwargs)
    start = [a.copy() for a in arrays]
    run(ours, theirs, opt, topt, 5)
    for p, tp, a in zip(ours, theirs, start):
        moved, tmoved = p.data - a, tp.detach().numpy() - a
        assert np.linalg.norm(moved - tmoved) < 0.02 * np.linalg.norm(tmoved)
    with pytest.raises(ValueError, match="2D parameters"):
        optim.Muon([Parameter(np.zeros(3))])


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.5, max_iter=7, history_size=3)])
def test_lbfgs_matches_torch(kwargs):
    import distbp
    start = np.array([-1.5, 2.0, 0.5])
    ours, theirs = Parameter(start.copy()), torch.tensor(start.copy(), requires_grad=True)
    opt, topt = optim.LBFGS([ours], **kwargs), torch.optim.LBFGS([theirs], **kwargs)

    def objective(m, x):  # well conditioned: rounding differences do not blow up
        w = m.tensor([1.0, 3.0, 0.5], dtype=m.float64)
        return ((x - 0.3) * (x - 0.3) * w).sum() + 0.1 * (x * x * x * x).sum() + x[0] * x[1]

    def closure(m, o, x):
        def f():
            o.zero_grad()
            loss = objective(m, x)
            loss.backward()
            return loss
        return f

    for _ in range(4):
        a = opt.step(closure(distbp, opt, ours))
        b = topt.step(closure(torch, topt, theirs))
        assert float(a.item()) == pytest.approx(float(b.item()), rel=1e-9)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert opt.state[ours]["func_evals"] == topt.state[theirs]["func_evals"]
    with pytest.raises(NotImplementedError, match="strong_wolfe"):
        optim.LBFGS([ours], line_search_fn="strong_wolfe")
