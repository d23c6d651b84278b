"""One helper to check an op against torch in float64: `check(fn, *inputs)`.

fn(m, *tensors) is run twice: with m = distbp's namespace and with m = torch's (both expose
m.F = nn.functional). It compares the outputs and the grad of EVERY float input to 1e-7 relative,
then runs distbp.gradcheck (finite differences) on the distbp side.

inputs: a shape tuple -> float64 randn that requires grad; `pos(shape)` -> positive values
(for log, sqrt, pow); `const(array)` -> passed as a tensor without grad (int indices, masks);
anything else (python scalars, strings) is passed through unchanged to both.
"""
import numpy as np
import torch

import distbp
import distbp.nn.functional as F


class _Lib:
    def __init__(self, module, functional):
        self._module, self.F = module, functional

    def __getattr__(self, name):
        return getattr(self._module, name)


DISTBP = _Lib(distbp, F)
TORCH = _Lib(torch, torch.nn.functional)


class pos(tuple):
    """A shape whose random values are positive (0.5 .. 2)."""


class const:
    def __init__(self, array):
        self.array = np.asarray(array)


def _make(spec, rng):
    if isinstance(spec, pos):
        return rng.uniform(0.5, 2.0, size=tuple(spec)), True
    if isinstance(spec, tuple):
        return rng.standard_normal(spec), True
    if isinstance(spec, const):
        return spec.array, False
    return spec, None  # pass-through


def _outs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check(fn, *specs, rtol=1e-7, atol=1e-10, gradcheck=True, seed=0):
    rng = np.random.default_rng(seed)
    made = [_make(s, rng) for s in specs]
    d_in = [distbp.tensor(a, requires_grad=g) if g is not None else a for a, g in made]
    t_in = [torch.tensor(a, requires_grad=g) if g is not None else a for a, g in made]
    d_out, t_out = _outs(fn(DISTBP, *d_in)), _outs(fn(TORCH, *t_in))
    assert len(d_out) == len(t_out), f"{len(d_out)} outputs vs torch's {len(t_out)}"
    loss_d = loss_t = 0
    for d, t in zip(d_out, t_out):
        assert tuple(d.shape) == tuple(t.shape), f"output shape {d.shape} vs torch {tuple(t.shape)}"
        np.testing.assert_allclose(d.data, t.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg="forward output differs from torch")
        if t.requires_grad:
            assert d.requires_grad, "distbp output does not require grad but torch's does"
            w = rng.standard_normal(tuple(t.shape))
            loss_d = loss_d + (d * distbp.tensor(w)).sum()
            loss_t = loss_t + (t * torch.tensor(w)).sum()
    if isinstance(loss_t, int):
        return  # nothing differentiable (comparisons, argmax ...)
    loss_d.backward()
    loss_t.backward()
    for i, (d, t) in enumerate(zip(d_in, t_in)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            tg = np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()
            dg = np.zeros(d.shape) if d.grad is None else d.grad
            assert dg.shape == tg.shape
            np.testing.assert_allclose(dg, tg, rtol=rtol, atol=atol,
                                       err_msg=f"grad of input {i} differs from torch")
    if gradcheck:
        fresh = [distbp.tensor(a, requires_grad=g) if g is not None else a for a, g in made]
        assert distbp.gradcheck(lambda *xs: fn(DISTBP, *xs), fresh)
