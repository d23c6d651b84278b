"""Rprop (sign-based steps with per-element adaptive sizes) and ASGD (averaged SGD), with
torch.optim's update rules.

    Rprop  s *= etaplus if g * g_prev > 0, etaminus if < 0 (and then g = 0); s clipped to
           step_sizes; p -= sign(g) * s
    ASGD   p *= 1 - lambd * eta; p -= eta * g; ax averages p from step t0 on;
           eta = lr / (1 + lambd * lr * t)^alpha, mu = 1 / max(1, t - t0)
"""
import numpy as np

from distbp.optim.optimizer import Optimizer, check_flags


class Rprop(Optimizer):
    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_flags("Rprop", foreach, None, capturable, differentiable)
        if lr < 0:
            raise ValueError(f"Rprop: invalid lr={lr}, must be >= 0")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Rprop: invalid etas={etas}, need 0 < etaminus < 1 < etaplus")
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                                      maximize=maximize))

    def _update_group(self, group):
        (etaminus, etaplus), (smin, smax) = group["etas"], group["step_sizes"]
        for p, g, state in self._grads(group):
            if not state:
                state.update(step=0, prev=np.zeros_like(p.data),
                             step_size=np.full_like(p.data, group["lr"]))
            state["step"] += 1
            sign = np.sign(g * state["prev"])
            factor = np.where(sign > 0, etaplus, np.where(sign < 0, etaminus, 1.0))
            s = state["step_size"]
            np.clip(s * factor, smin, smax, out=s)
            g = np.where(sign < 0, 0, g)  # after a sign change: no step, and forget the grad
            p.data -= np.sign(g) * s
            state["prev"][...] = g


class ASGD(Optimizer):
    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        check_flags("ASGD", foreach, None, capturable, differentiable)
        if lr < 0 or weight_decay < 0:
            raise ValueError(f"ASGD: invalid lr={lr} or weight_decay={weight_decay}, must be >= 0")
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, maximize=maximize))

    def _update_group(self, group):
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        for p, g, state in self._grads(group):
            if not state:
                state.update(step=0, eta=lr, mu=1.0, ax=np.zeros_like(p.data))
            state["step"] += 1
            t = state["step"]
            if group["weight_decay"] != 0:
                g = g + group["weight_decay"] * p.data
            eta = state["eta"]
            p.data *= 1 - lambd * eta
            p.data -= eta * g
            if state["mu"] != 1:
                state["ax"] += (p.data - state["ax"]) * state["mu"]
            else:
                state["ax"][...] = p.data
            state["eta"] = lr / ((1 + lambd * lr * t) ** alpha)
            state["mu"] = 1 / max(1, t - t0)
