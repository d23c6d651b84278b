"""Normalisation: batch_norm and layer_norm (closed-form primitives), group_norm and instance_norm
(the layer-norm primitive on a reshaped view plus a per-channel affine), rms_norm,
local_response_norm and normalize (composed)."""
import numpy as np

from distbp.ops import nn as NN
from distbp.tensor import Tensor

from ._utils import data


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch norm over (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), per channel.

    running_mean/running_var (Tensors or arrays, or None) are updated in place in training.
    Statistics over the batch across data-parallel ranks: nn.SyncBatchNorm (or any BatchNorm
    module inside DistributedDataParallel), which call _batch_norm with their `allreduce`.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5, allreduce=None):
    """batch_norm plus `allreduce`: None, or a callable that sums a numpy array in place across
    data-parallel replicas and returns it; given, the statistics are over the global batch (sync
    batch-norm). It is called once in forward and once in backward, so every replica must run both."""
    if running_mean is None and not training:
        training = True  # like torch: without running stats, batch stats are used in eval too
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    return NN.BatchNorm.apply(input, weight, bias, rm, rv, training=training, momentum=momentum,
                              eps=eps, allreduce=allreduce)


def _shape(normalized_shape):
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = _shape(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing dims "
                         f"of input shape {tuple(input.shape)}")
    return NN.LayerNorm.apply(input, weight, bias, ndim=len(shape), eps=eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x**2 over the trailing dims) + eps) * weight; eps None: the dtype's eps."""
    shape = _shape(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"rms_norm: normalized_shape {shape} does not match the trailing dims "
                         f"of input shape {tuple(input.shape)}")
    eps = float(np.finfo(input.dtype).eps) if eps is None else eps
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ((input * input).mean(dim=dims, keepdim=True) + eps) ** -0.5
    return out if weight is None else out * weight


def _channel_affine(out, weight, bias):
    shape = (1, out.shape[1]) + (1,) * (out.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of num_groups channel groups of each sample; input (N, C, *)."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ValueError(f"group_norm: expected input (N, C, *) with C divisible by num_groups="
                         f"{num_groups}, got shape {tuple(input.shape)}")
    n = input.shape[0]
    xhat = NN.LayerNorm.apply(input.reshape(n, num_groups, -1), None, None, ndim=1, eps=eps)
    return _channel_affine(xhat.reshape(input.shape), weight, bias)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) over its spatial dims; input (N, C, *).
    With use_input_stats=False the running statistics (per channel) are used instead."""
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected input (N, C, L...) got shape {tuple(input.shape)}")
    n, c = input.shape[:2]
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    flat = input.reshape(n, c, -1)
    if running_mean is not None or running_var is not None:
        x = flat.data
        m = x.shape[-1]
        if running_mean is not None:
            rm = data(running_mean)
            rm *= 1 - momentum
            rm += momentum * x.mean(-1).mean(0)
        if running_var is not None:
            rv = data(running_var)
            rv *= 1 - momentum
            rv += momentum * (x.var(-1) * (m / (m - 1))).mean(0)
    xhat = NN.LayerNorm.apply(flat, None, None, ndim=1, eps=eps)
    return _channel_affine(xhat.reshape(input.shape), weight, bias)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x**2 over `size` neighbouring channels) ** beta (torch's form)."""
    from .pooling import avg_pool2d
    from .vision import pad
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected input (N, C, *) got shape "
                         f"{tuple(input.shape)}")
    n, c = input.shape[:2]
    sq = (input * input).reshape(n, 1, c, -1)                          # (N, 1, C, rest)
    sq = pad(sq, (0, 0, size // 2, (size - 1) // 2))
    div = avg_pool2d(sq, (size, 1), stride=1).reshape(input.shape)
    return input / (div * alpha + k) ** beta


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p over dim, eps)."""
    if out is not None:
        raise ValueError("normalize: out= is not supported; use the returned tensor")
    if p == 2:
        norm = (input * input).sum(dim, keepdim=True).sqrt()
    else:
        norm = (input.abs() ** p).sum(dim, keepdim=True) ** (1.0 / p)
    return input / norm.clamp(min=eps)
