"""Adafactor and Muon with torch.optim's update rules.

Adafactor keeps, for a matrix gradient, only row and column means of g^2 (factored second
moment); step t uses beta2_t = 1 - t^beta2_decay, rho_t = min(lr, 1/sqrt(t)) and scales the step by
the parameter's RMS (at least eps2), clipping the update's RMS at d.

Muon orthogonalises the (Nesterov) momentum of a 2-D gradient with 5 Newton-Schulz iterations
(X <- aX + (bA + cA^2)X, A = XX^T) and steps by lr * sqrt(max(1, rows/cols)). torch runs the
iterations in bfloat16; distbp (numpy has no bfloat16) in the parameter's dtype, so the two agree
to bfloat16 precision, not to the last bit.
"""
import math

import numpy as np

from distbp.optim.optimizer import Optimizer, check_flags


class Adafactor(Optimizer):
    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        check_flags("Adafactor", foreach)
        if lr < 0 or weight_decay < 0 or beta2_decay > 0 or d < 1.0:
            raise ValueError(f"Adafactor: invalid lr={lr}, weight_decay={weight_decay}, "
                             f"beta2_decay={beta2_decay} (must be <= 0) or d={d} (must be >= 1)")
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                                      weight_decay=weight_decay, maximize=maximize))

    def _update_group(self, group):
        lr, (eps1, eps2), d = group["lr"], group["eps"], group["d"]
        for p, g, state in self._grads(group):
            e1 = np.finfo(p.data.dtype).eps if eps1 is None else eps1
            if not state:
                state["step"] = 0.0
                if g.ndim > 1:
                    state["row_var"] = np.zeros(g.shape[:-1] + (1,), dtype=p.data.dtype)
                    state["col_var"] = np.zeros(g.shape[:-2] + (1, g.shape[-1]), dtype=p.data.dtype)
                else:
                    state["variance"] = np.zeros_like(p.data)
            state["step"] += 1
            t = state["step"]
            beta2_t = t ** group["beta2_decay"]
            alpha = max(eps2, float(np.linalg.norm(p.data)) / math.sqrt(p.data.size)) * min(lr, 1 / t ** 0.5)
            if group["weight_decay"] != 0:
                p.data *= 1 - lr * group["weight_decay"]
            if g.ndim > 1:
                row, col = state["row_var"], state["col_var"]
                row += beta2_t * ((g * g).mean(axis=-1, keepdims=True) - row)
                col += beta2_t * ((g * g).mean(axis=-2, keepdims=True) - col)
                var = (row @ col) / np.maximum(row.mean(axis=-2, keepdims=True), e1)
            else:
                v = state["variance"]
                v += beta2_t * (g * g - v)
                var = v.copy()
            update = g / np.sqrt(np.maximum(var, e1 * e1))
            denom = max(1.0, float(np.linalg.norm(update)) / (math.sqrt(update.size) * d))
            p.data -= alpha / denom * update


def _newton_schulz(g, coefficients, steps, eps):
    a, b, c = coefficients
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if g.shape[0] > g.shape[1] else x


class Muon(Optimizer):
    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.775, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        if lr < 0 or weight_decay < 0 or momentum < 0:
            raise ValueError(f"Muon: invalid lr={lr}, weight_decay={weight_decay} or "
                             f"momentum={momentum}, each must be >= 0")
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Muon: adjust_lr_fn={adjust_lr_fn!r} must be None, 'original' or "
                             "'match_rms_adamw'")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      nesterov=nesterov, ns_coefficients=tuple(ns_coefficients),
                                      eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn))
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                if p.data.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas param {i} has shape "
                                     f"{p.data.shape}; optimise the others with AdamW")

    def _update_group(self, group):
        lr, m = group["lr"], group["momentum"]
        for p, g, state in self._grads(group):
            buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buf += (1 - m) * (g - buf)
            update = g + m * (buf - g) if group["nesterov"] else buf
            update = _newton_schulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
            rows, cols = p.data.shape
            ratio = (0.2 * math.sqrt(max(rows, cols)) if group["adjust_lr_fn"] == "match_rms_adamw"
                     else math.sqrt(max(1, rows / cols)))
            p.data *= 1 - lr * group["weight_decay"]
            p.data -= lr * ratio * update
