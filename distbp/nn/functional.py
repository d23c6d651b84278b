"""distbp.nn.functional: torch.nn.functional's names and signatures on distbp Tensors.

Primitives (own backward, in distbp/ops): linear, conv2d, pooling, batch_norm, layer_norm,
log_softmax, softmax, gelu. Everything else here is composed from Tensor ops.
"""
import numpy as np

from distbp import random as _random
from distbp.ops import elementwise as E
from distbp.ops import linalg as L
from distbp.ops import nn as NN
from distbp.tensor import Tensor


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v}")
    return v


def _single(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = tuple(v)
    if len(v) != 1:
        raise ValueError(f"{name} must be an int or a 1-tuple, got {v}")
    return int(v[0])


def _expect_ndim(x, ndims, what, layout):
    if x.ndim not in ndims:
        raise ValueError(f"{what}: expected input {layout}, got shape {tuple(x.shape)}")


# ---------------------------------------------------------------- linear and convolution

def linear(input, weight, bias=None):
    """input (..., in) @ weight (out, in).T + bias (out,)."""
    return L.Linear.apply(input, weight, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, H, W), weight (O, C, kh, kw) -> (N, O, Ho, Wo)."""
    if _pair(dilation, "dilation") != (1, 1) or groups != 1:
        raise NotImplementedError("conv2d: only dilation=1 and groups=1 are supported")
    _expect_ndim(input, (4,), "conv2d", "(N, C, H, W)")
    return NN.Conv2d.apply(input, weight, bias, stride=_pair(stride, "stride"),
                           padding=_pair(padding, "padding"))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, L), weight (O, C, k) -> (N, O, Lo); runs as a conv2d with height 1."""
    _expect_ndim(input, (3,), "conv1d", "(N, C, L)")
    if weight.ndim != 3 or weight.shape[1] != input.shape[1]:
        raise ValueError(f"conv1d: input of shape {tuple(input.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected input (N, {weight.shape[1]}, L))")
    n, c, length = input.shape
    o, _, k = weight.shape
    out = conv2d(input.reshape(n, c, 1, length), weight.reshape(o, c, 1, k), bias,
                 stride=(1, _single(stride, "stride")), padding=(0, _single(padding, "padding")),
                 dilation=dilation, groups=groups)
    return out.reshape(n, o, out.shape[-1])


# ---------------------------------------------------------------- pooling

def max_pool2d(input, kernel_size, stride=None, padding=0):
    _expect_ndim(input, (4,), "max_pool2d", "(N, C, H, W)")
    k = _pair(kernel_size, "kernel_size")
    return NN.MaxPool2d.apply(input, kernel_size=k, stride=k if stride is None else _pair(stride, "stride"),
                              padding=_pair(padding, "padding"))


def avg_pool2d(input, kernel_size, stride=None, padding=0):
    _expect_ndim(input, (4,), "avg_pool2d", "(N, C, H, W)")
    k = _pair(kernel_size, "kernel_size")
    return NN.AvgPool2d.apply(input, kernel_size=k, stride=k if stride is None else _pair(stride, "stride"),
                              padding=_pair(padding, "padding"))


def _pool1d(pool, input, kernel_size, stride, padding, what):
    _expect_ndim(input, (3,), what, "(N, C, L)")
    n, c, length = input.shape
    k = _single(kernel_size, "kernel_size")
    s = k if stride is None else _single(stride, "stride")
    out = pool.apply(input.reshape(n, c, 1, length), kernel_size=(1, k), stride=(1, s),
                     padding=(0, _single(padding, "padding")))
    return out.reshape(n, c, out.shape[-1])


def max_pool1d(input, kernel_size, stride=None, padding=0):
    return _pool1d(NN.MaxPool2d, input, kernel_size, stride, padding, "max_pool1d")


def avg_pool1d(input, kernel_size, stride=None, padding=0):
    return _pool1d(NN.AvgPool2d, input, kernel_size, stride, padding, "avg_pool1d")


# ---------------------------------------------------------------- normalisation

def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, allreduce=None):
    """Batch norm over (N, C), (N, C, L) or (N, C, H, W), per channel.

    running_mean/running_var (Tensors or arrays, or None) are updated in place in training.
    allreduce: None, or a callable that sums a numpy array in place across data-parallel replicas
    and returns it; given, the statistics are over the global batch (sync batch-norm). It is
    called once in forward and once in backward, so every replica must run both.
    """
    if running_mean is None and not training:
        training = True  # like torch: without running stats, batch stats are used in eval too
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    return NN.BatchNorm.apply(input, weight, bias, rm, rv, training=training, momentum=momentum,
                              eps=eps, allreduce=allreduce)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing dims "
                         f"of input shape {tuple(input.shape)}")
    return NN.LayerNorm.apply(input, weight, bias, ndim=len(shape), eps=eps)


# ---------------------------------------------------------------- activations

def relu(input):
    return E.Relu.apply(input)


def gelu(input, approximate="none"):
    return E.Gelu.apply(input, approximate=approximate)


def tanh(input):
    return E.Tanh.apply(input)


def sigmoid(input):
    return E.Sigmoid.apply(input)


def silu(input):
    return input * E.Sigmoid.apply(input)


def leaky_relu(input, negative_slope=0.01):
    return E.Where.apply(input.data > 0, input, input * negative_slope)


def softmax(input, dim):
    return NN.Softmax.apply(input, axis=dim)


def log_softmax(input, dim):
    return NN.LogSoftmax.apply(input, axis=dim)


_ACTIVATIONS = {"relu": relu, "gelu": gelu, "tanh": tanh, "sigmoid": sigmoid, "silu": silu,
                "leaky_relu": leaky_relu}


def get_activation(name):
    """The activation function called `name` (config files name activations by string)."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(_ACTIVATIONS))}") from None


# ---------------------------------------------------------------- dropout and embedding

def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p).

    The mask comes from distbp.random.uniform_rows, so inside distbp.random.per_sample each
    sample's mask depends on its global index, not on the rank that holds it.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    u = _random.uniform_rows(input.shape, input.dtype)
    mask = (u >= p).astype(input.dtype) * np.asarray(1 / (1 - p), dtype=input.dtype)
    return input * mask


def embedding(input, weight):
    """Rows of weight (num_embeddings, dim) picked by the integer indices in input."""
    idx = input.data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise IndexError(f"embedding: index out of range [0, {weight.shape[0]}) "
                         f"(min {idx.min()}, max {idx.max()})")
    return weight[idx]


# ---------------------------------------------------------------- losses

def _reduce(loss, reduction, count=None):
    if reduction == "mean":
        return loss.sum() / count if count is not None else loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, ignore_index=-100):
    """input (N, C) or (N, C, d1, ...) logits, target (N,) or (N, d1, ...) class indices."""
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {t.dtype}")
    if input.ndim < 1 or t.shape != (input.shape[:1] + input.shape[2:]):
        raise ValueError(f"cross_entropy: input of shape {tuple(input.shape)} does not match target "
                         f"of shape {t.shape} (expected target {input.shape[:1] + input.shape[2:]})")
    c = input.shape[1]
    valid = t != ignore_index
    tv = np.where(valid, t, 0)
    if tv.size and (tv.min() < 0 or tv.max() >= c):
        raise IndexError(f"cross_entropy: target out of range [0, {c}) (min {tv.min()}, max {tv.max()})")
    # target distribution q along the class axis: (1 - ls) * onehot + ls / C; zero for ignored
    q = np.eye(c, dtype=input.dtype)[tv]                      # (N, ..., C)
    if label_smoothing:
        q = q * (1 - label_smoothing) + label_smoothing / c
    q *= valid[..., None]
    if input.ndim > 2:
        q = np.moveaxis(q, -1, 1)                              # (N, C, d1, ...)
    loss = -(log_softmax(input, 1) * q).sum(1)                 # (N, d1, ...)
    return _reduce(loss, reduction, count=int(valid.sum()) if reduction == "mean" else None)


def nll_loss(input, target, reduction="mean", ignore_index=-100):
    """input (N, C) log-probabilities, target (N,) class indices."""
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    valid = t != ignore_index
    q = np.eye(input.shape[1], dtype=input.dtype)[np.where(valid, t, 0)] * valid[..., None]
    if input.ndim > 2:
        q = np.moveaxis(q, -1, 1)
    return _reduce(-(input * q).sum(1), reduction, count=int(valid.sum()) if reduction == "mean" else None)


def mse_loss(input, target, reduction="mean"):
    if tuple(np.shape(target.data if isinstance(target, Tensor) else target)) != tuple(input.shape):
        raise ValueError(f"mse_loss: input of shape {tuple(input.shape)} and target of shape "
                         f"{tuple(np.shape(target.data if isinstance(target, Tensor) else target))} differ")
    diff = input - target
    return _reduce(diff * diff, reduction)
