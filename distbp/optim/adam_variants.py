"""Adam's relatives with torch.optim's update rules: Adamax (infinity norm), NAdam (Nesterov
momentum with the 0.96^(t * momentum_decay) schedule), RAdam (rectified variance)."""
import math

import numpy as np

from distbp.optim.adam import check_adam_args
from distbp.optim.optimizer import Optimizer, check_flags


def _moments(p, g, state, beta1, beta2=None):
    if "step" not in state:
        state.update(step=0, exp_avg=np.zeros_like(p.data))
        if beta2 is not None:
            state["exp_avg_sq"] = np.zeros_like(p.data)
    state["step"] += 1
    m = state["exp_avg"]
    m += (1 - beta1) * (g - m)
    if beta2 is not None:
        v = state["exp_avg_sq"]
        v *= beta2
        v += (1 - beta2) * g * g
    return state["step"]


def _decay(p, g, lr, wd, decoupled):
    if wd == 0:
        return g
    if decoupled:
        p.data *= 1 - lr * wd
        return g
    return g + wd * p.data


class Adamax(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        check_flags("Adamax", foreach, None, capturable, differentiable)
        check_adam_args("Adamax", lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for p, g, state in self._grads(group):
            g = _decay(p, g, lr, group["weight_decay"], False)
            state.setdefault("exp_inf", np.zeros_like(p.data))
            t = _moments(p, g, state, beta1)
            u = state["exp_inf"]
            np.maximum(u * beta2, np.abs(g) + eps, out=u)
            p.data -= lr / (1 - beta1 ** t) * state["exp_avg"] / u


class NAdam(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        check_flags("NAdam", foreach, None, capturable, differentiable)
        check_adam_args("NAdam", lr, betas, eps, weight_decay)
        if momentum_decay < 0:
            raise ValueError(f"NAdam: invalid momentum_decay={momentum_decay}, must be >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update_group(self, group):
        lr, (beta1, beta2), eps, psi = group["lr"], group["betas"], group["eps"], group["momentum_decay"]
        for p, g, state in self._grads(group):
            state.setdefault("mu_product", 1.0)
            g = _decay(p, g, lr, group["weight_decay"], group["decoupled_weight_decay"])
            t = _moments(p, g, state, beta1, beta2)
            mu = beta1 * (1 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
            state["mu_product"] *= mu
            mu_prod = state["mu_product"]
            denom = np.sqrt(state["exp_avg_sq"] / (1 - beta2 ** t)) + eps
            p.data -= lr * (1 - mu) / (1 - mu_prod) * g / denom
            p.data -= lr * mu_next / (1 - mu_prod * mu_next) * state["exp_avg"] / denom


class RAdam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_flags("RAdam", foreach, None, capturable, differentiable)
        check_adam_args("RAdam", lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        rho_inf = 2 / (1 - beta2) - 1
        for p, g, state in self._grads(group):
            g = _decay(p, g, lr, group["weight_decay"], group["decoupled_weight_decay"])
            t = _moments(p, g, state, beta1, beta2)
            bc2 = 1 - beta2 ** t
            m_hat = state["exp_avg"] / (1 - beta1 ** t)
            rho_t = rho_inf - 2 * t * beta2 ** t / bc2
            if rho_t > 5:  # variance is tractable: rectified adaptive step
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                                 ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                adaptive = math.sqrt(bc2) / (np.sqrt(state["exp_avg_sq"]) + eps)
                p.data -= m_hat * lr * adaptive * rect
            else:
                p.data -= m_hat * lr
