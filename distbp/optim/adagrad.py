"""Optimizers that scale by a running sum or average of squared gradients, with torch.optim's
update rules: Adagrad, Adadelta, RMSprop. (g: the gradient plus weight_decay * p.)

    Adagrad   sum += g^2;  p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
    Adadelta  v = rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) * g;
              u = rho u + (1 - rho) d^2;  p -= lr * d
    RMSprop   v = alpha v + (1 - alpha) g^2;  (centered: v - mean(g)^2);  s = sqrt(.) + eps
              p -= lr * g / s, or with momentum: buf = momentum * buf + g / s;  p -= lr * buf
"""
import numpy as np

from distbp.optim.optimizer import Optimizer, check_flags


def _check(name, **values):
    for key, v in values.items():
        if v < 0:
            raise ValueError(f"{name}: invalid {key}={v}, must be >= 0")


def _l2(g, p, wd):
    return g + wd * p.data if wd != 0 else g


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_flags("Adagrad", foreach, fused, False, differentiable)
        _check("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
               initial_accumulator_value=initial_accumulator_value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))
        for group in self.param_groups:  # torch creates the state at construction
            for p in group["params"]:
                self.state[p] = {"step": 0, "sum": np.full_like(
                    p.data, group["initial_accumulator_value"])}

    def _update_group(self, group):
        for p, g, state in self._grads(group):
            state["step"] += 1
            g = _l2(g, p, group["weight_decay"])
            clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
            state["sum"] += g * g
            p.data -= clr * g / (np.sqrt(state["sum"]) + group["eps"])


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        check_flags("Adadelta", foreach, None, capturable, differentiable)
        _check("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: invalid rho={rho}, must be in [0, 1]")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _update_group(self, group):
        rho, eps = group["rho"], group["eps"]
        for p, g, state in self._grads(group):
            if not state:
                state.update(step=0, square_avg=np.zeros_like(p.data), acc_delta=np.zeros_like(p.data))
            state["step"] += 1
            g = _l2(g, p, group["weight_decay"])
            v, u = state["square_avg"], state["acc_delta"]
            v *= rho
            v += (1 - rho) * g * g
            delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
            u *= rho
            u += (1 - rho) * delta * delta
            p.data -= group["lr"] * delta


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        check_flags("RMSprop", foreach, None, capturable, differentiable)
        _check("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update_group(self, group):
        alpha, momentum = group["alpha"], group["momentum"]
        for p, g, state in self._grads(group):
            if not state:
                state.update(step=0, square_avg=np.zeros_like(p.data))
                if momentum > 0:
                    state["momentum_buffer"] = np.zeros_like(p.data)
                if group["centered"]:
                    state["grad_avg"] = np.zeros_like(p.data)
            state["step"] += 1
            g = _l2(g, p, group["weight_decay"])
            v = state["square_avg"]
            v *= alpha
            v += (1 - alpha) * g * g
            if group["centered"]:
                m = state["grad_avg"]
                m += (1 - alpha) * (g - m)
                avg = np.sqrt(v - m * m) + group["eps"]
            else:
                avg = np.sqrt(v) + group["eps"]
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += g / avg
                p.data -= group["lr"] * buf
            else:
                p.data -= group["lr"] * g / avg
