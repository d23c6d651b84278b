"""SGD with momentum, dampening, Nesterov and L2 weight decay: torch.optim.SGD's update rule.

    g = grad + weight_decay * p
    buf = g                                   (first step)
    buf = momentum * buf + (1 - dampening) * g (later steps)
    g = g + momentum * buf if nesterov else buf
    p -= lr * g
"""
import numpy as np

from distbp.optim.optimizer import Optimizer, check_flags


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        check_flags("SGD", foreach, fused, False, differentiable)
        if lr < 0:
            raise ValueError(f"SGD: invalid lr={lr}, must be >= 0")
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum={momentum}, must be >= 0")
        if weight_decay < 0:
            raise ValueError(f"SGD: invalid weight_decay={weight_decay}, must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening == 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update_group(self, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov = group["weight_decay"], group["nesterov"]
        for p, g, state in self._grads(group):
            if wd != 0:
                g = g + wd * p.data
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, dtype=p.data.dtype, copy=True)
                else:
                    buf *= momentum
                    if dampening == 0:
                        buf += g
                    else:
                        buf += (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            # in place: keeps views of p.data (flat buckets, tied weights) valid
            p.data -= lr * g
