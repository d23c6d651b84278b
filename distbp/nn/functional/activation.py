"""Activations and the softmax family, torch.nn.functional's signatures.

Pointwise ones run as one `Pointwise` primitive each (distbp/ops/pointwise.py: a table of forward
and derivative rules); glu, prelu, rrelu, softmin and gumbel_softmax are composed.
`inplace=True` and the trailing-underscore variants (relu_, elu_, ...) overwrite the input with
torch's rules (Tensor._write: a tensor inside a graph is rebased onto the result's node, a leaf
that requires grad raises) and return it.
"""
import warnings

import numpy as np

from distbp import random as _random
from distbp.ops import elementwise as E
from distbp.ops import nn as NN
from distbp.ops.pointwise import Pointwise
from distbp.tensor import Tensor

from ._utils import as_tensor


def _pw(op, input, **options):
    return Pointwise.apply(input, op=op, **options)


def _inplace(input, inplace, fn):
    """fn(input), written into input when inplace (torch's in-place rules, see Tensor._write)."""
    return input._write(fn) if inplace else fn(input)


# ---------------------------------------------------------------- rectifiers

def relu(input, inplace=False):
    return _inplace(input, inplace, E.Relu.apply)


def relu6(input, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("hardtanh", x, min_val=0.0, max_val=6.0))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("leaky_relu", x, negative_slope=negative_slope))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} cannot be greater than max_val {max_val}")
    return _inplace(input, inplace, lambda x: _pw("hardtanh", x, min_val=min_val, max_val=max_val))


def threshold(input, threshold, value, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("threshold", x, threshold=threshold, value=value))


def hardshrink(input, lambd=0.5):
    return _pw("hardshrink", input, lambd=lambd)


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return _pw("softshrink", input, lambd=lambd)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x); weight has 1 element or one per channel (dim 1)."""
    n = weight.shape[0] if weight.ndim else 1
    if n != 1 and (input.ndim < 2 or input.shape[1] != n):
        raise ValueError(f"prelu: weight of {n} parameters does not match the channels (dim 1) of "
                         f"input shape {tuple(input.shape)}")
    w = weight.reshape((1, n) + (1,) * (input.ndim - 2)) if n != 1 else weight.reshape(())
    return E.Where.apply(input.data > 0, input, input * w)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomised leaky relu: slope ~ U(lower, upper) per element in training, the mean in eval."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)

    def f(x):
        slope = lower + (upper - lower) * _random.uniform_rows(x.shape, x.dtype)
        return E.Where.apply(x.data >= 0, x, x * slope)
    return _inplace(input, inplace, f)


# torch's in-place spellings
def relu_(input):
    return relu(input, inplace=True)


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def selu_(input):
    return selu(input, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, inplace=True)


# ---------------------------------------------------------------- exponential family and gates

def elu(input, alpha=1.0, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("elu", x, alpha=alpha))


def selu(input, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("selu", x))


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return _inplace(input, inplace, lambda x: _pw("celu", x, alpha=alpha))


def softplus(input, beta=1.0, threshold=20.0):
    return _pw("softplus", input, beta=beta, threshold=threshold)


def logsigmoid(input):
    return _pw("logsigmoid", input)


def gelu(input, approximate="none"):
    return E.Gelu.apply(input, approximate=approximate)


def silu(input, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("silu", x))


def mish(input, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("mish", x))


def hardsigmoid(input, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("hardsigmoid", x))


def hardswish(input, inplace=False):
    return _inplace(input, inplace, lambda x: _pw("hardswish", x))


def sigmoid(input):
    return E.Sigmoid.apply(input)


def tanh(input):
    return E.Tanh.apply(input)


def softsign(input):
    return _pw("softsign", input)


def tanhshrink(input):
    return _pw("tanhshrink", input)


def glu(input, dim=-1):
    """a * sigmoid(b) where a, b are the two halves of input along dim."""
    n = input.shape[dim]
    if n % 2:
        raise ValueError(f"glu: halving dimension {dim} of size {n} (input shape "
                         f"{tuple(input.shape)}) needs an even size")
    d = dim % input.ndim
    first = (slice(None),) * d + (slice(0, n // 2),)
    second = (slice(None),) * d + (slice(n // 2, n),)
    return input[first] * sigmoid(input[second])


# ---------------------------------------------------------------- softmax family

def _softmax_dim(name, ndim):
    """torch's implicit dim for softmax(dim=None) (deprecated there, with this warning)."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  f"include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _cast(input, dtype):
    return input if dtype is None else input.to(dtype)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    dim = _softmax_dim("softmax", input.ndim) if dim is None else dim
    return NN.Softmax.apply(_cast(input, dtype), axis=dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    dim = _softmax_dim("log_softmax", input.ndim) if dim is None else dim
    return NN.LogSoftmax.apply(_cast(input, dtype), axis=dim)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    dim = _softmax_dim("softmin", input.ndim) if dim is None else dim
    return NN.Softmax.apply(-_cast(input, dtype), axis=dim)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """Softmax of (logits + Gumbel noise) / tau; hard=True returns the one-hot argmax in the
    forward pass with the soft sample's gradient (straight-through)."""
    u = _random.default_generator().random(logits.shape).astype(logits.dtype)
    gumbels = -np.log(-np.log(u + eps) + eps)  # eps: no log(0)
    y = NN.Softmax.apply((as_tensor(logits) + gumbels.astype(logits.dtype)) / tau, axis=dim)
    if not hard:
        return y
    index = y.data.argmax(axis=dim)
    onehot = np.zeros(y.shape, dtype=y.dtype)
    np.put_along_axis(onehot, np.expand_dims(index, dim), 1, axis=dim)
    return y - y.detach() + Tensor(onehot)


_ACTIVATIONS = {"relu": relu, "gelu": gelu, "tanh": tanh, "sigmoid": sigmoid, "silu": silu,
                "leaky_relu": leaky_relu, "elu": elu, "selu": selu, "celu": celu, "mish": mish,
                "softplus": softplus, "hardswish": hardswish, "hardsigmoid": hardsigmoid,
                "relu6": relu6, "hardtanh": hardtanh, "softsign": softsign, "logsigmoid": logsigmoid,
                "tanhshrink": tanhshrink}


def get_activation(name):
    """The activation function called `name` (config files name activations by string)."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(_ACTIVATIONS))}") from None
