"""Gradient and parameter utilities: clip_grad_norm_, clip_grad_value_, parameters_to_vector,
vector_to_parameters (torch.nn.utils names)."""
import math

import numpy as np


def _as_list(parameters):
    return [parameters] if hasattr(parameters, "data") and hasattr(parameters, "grad") \
        else list(parameters)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all grads in place so their joint `norm_type`-norm is at most `max_norm`.
    Returns the total norm before clipping (a float), as torch does."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = max(float(np.abs(g).max()) for g in grads)
    elif norm_type == 2.0:
        total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))  # vdot: no temporary
    else:
        total = sum(float((np.abs(g) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients "
                           f"is {total}; set error_if_nonfinite=False to clip anyway")
    coef = clip_coefficient(total, max_norm)
    if coef < 1.0:  # torch multiplies by the clamped coefficient; 1.0 is a no-op
        for g in grads:
            g *= coef
    return total


def clip_coefficient(total_norm, max_norm):
    """What clip_grad_norm_ multiplies the gradients by (torch's formula): for trainers that know
    the global norm without holding every gradient (sharded optimizer, parameter servers)."""
    return min(max_norm / (total_norm + 1e-6), 1.0)


def clip_grad_value_(parameters, clip_value):
    for p in _as_list(parameters):
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)


def parameters_to_vector(parameters):
    """One flat numpy array of all parameter values (a copy), in iteration order."""
    return np.concatenate([p.data.ravel() for p in _as_list(parameters)])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the flat array `vec` into the parameters, in place."""
    params = _as_list(parameters)
    total = sum(p.data.size for p in params)
    if vec.size != total:
        raise ValueError(f"vector_to_parameters: vector has {vec.size} elements, parameters "
                         f"have {total}")
    offset = 0
    for p in params:
        n = p.data.size
        p.data[...] = vec[offset:offset + n].reshape(p.data.shape)
        offset += n
