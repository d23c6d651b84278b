"""Adam and AdamW with torch.optim's update rules (bias correction, optional amsgrad).

    m = beta1 * m + (1 - beta1) * g          v = beta2 * v + (1 - beta2) * g^2
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

Adam adds weight_decay * p to the gradient (L2); AdamW (or Adam(decoupled_weight_decay=True))
instead shrinks p by (1 - lr * weight_decay) before the update (decoupled weight decay).
"""
import math

import numpy as np

from distbp.optim.optimizer import Optimizer, check_flags


def check_adam_args(name, lr, betas, eps, weight_decay):
    if lr < 0:
        raise ValueError(f"{name}: invalid lr={lr}, must be >= 0")
    if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
        raise ValueError(f"{name}: invalid betas={betas}, each must be in [0, 1)")
    if eps < 0:
        raise ValueError(f"{name}: invalid eps={eps}, must be >= 0")
    if weight_decay < 0:
        raise ValueError(f"{name}: invalid weight_decay={weight_decay}, must be >= 0")


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        name = type(self).__name__
        check_flags(name, foreach, fused, capturable, differentiable)
        check_adam_args(name, lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad = group["weight_decay"], group["amsgrad"]
        decoupled = group.get("decoupled_weight_decay", False)
        for p, g, state in self._grads(group):
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
                if amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            t = state["step"]
            if wd != 0:
                if decoupled:
                    p.data *= 1 - lr * wd
                else:
                    g = g + wd * p.data
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m += (1 - beta1) * (g - m)  # torch's lerp form
            v *= beta2
            v += (1 - beta2) * g * g
            if amsgrad:
                np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
            step_size = lr / (1 - beta1 ** t)
            denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
            p.data -= step_size * (m / denom)


class AdamW(Adam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
