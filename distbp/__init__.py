"""distbp: distributed data-parallel backpropagation with a numpy tensor-autodiff core.

The core mirrors PyTorch's names: `distbp.tensor`, `Tensor.backward`, `distbp.no_grad`,
`distbp.nn`, `distbp.optim`, `distbp.autograd.Function`.
"""
from distbp import autograd, random
from distbp.autograd import enable_grad, is_grad_enabled, no_grad
from distbp.gradcheck import gradcheck
from distbp.random import manual_seed
from distbp.tensor import (Tensor, abs, arange, argmax, bool_, cat, clamp, exp, float32, float64,
                           from_numpy, full, int32, int64, log, log_softmax, matmul, maximum, mean,
                           minimum, ones, ones_like, rand, randint, randn, relu, sigmoid, softmax,
                           sqrt, stack, sum, tanh, tensor, where, zeros, zeros_like)
from distbp._version import version as _version

__version__ = _version()

__all__ = [
    "Tensor", "tensor", "from_numpy", "no_grad", "enable_grad", "is_grad_enabled", "cat", "stack",
    "where", "zeros", "ones", "zeros_like", "ones_like", "full", "randn", "rand", "randint",
    "arange", "manual_seed", "float32", "float64", "int32", "int64", "bool_", "gradcheck",
    "autograd", "random", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "clamp",
    "matmul", "softmax", "log_softmax", "maximum", "minimum", "sum", "mean", "argmax", "nn", "optim",
]


def __getattr__(name):
    # nn and optim import lazily so the core stays importable while they are being built
    if name in ("nn", "optim"):
        import importlib
        return importlib.import_module(f"distbp.{name}")
    if name in ("futures", "parallel"):
        import importlib
        return importlib.import_module(f"distbp.{name}")
    raise AttributeError(f"module 'distbp' has no attribute {name!r}")
