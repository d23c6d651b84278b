"""distbp: distributed data-parallel backpropagation with a numpy tensor-autodiff core.

The core mirrors PyTorch's names: `distbp.tensor`, `Tensor.backward`, `distbp.no_grad`,
`distbp.nn`, `distbp.optim`, `distbp.autograd.Function`, `distbp.save`/`distbp.load`; a script
ports by replacing `torch` with `distbp`. docs/pytorch-coverage.md lists what is implemented.
"""
from distbp import autograd, cuda, random
from distbp._version import version as _version
from distbp.autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from distbp.dtypes import (bool_, device, float16, float32, float64, get_default_dtype, int8, int16,
                           int32, int64, set_default_dtype, uint8)
from distbp.dtypes import ALIASES as _ALIASES
from distbp.gradcheck import gradcheck
from distbp.random import Generator, manual_seed
from distbp.serialization import load, save
from distbp.tensor import (Tensor, abs, arange, argmax, cat, clamp, clip, concat, concatenate, empty,
                           empty_like, exp, eye, from_numpy, full, full_like, linspace, log,
                           log_softmax, matmul, maximum, mean, minimum, normal, ones, ones_like,
                           rand, rand_like, randint, randn, randn_like, randperm, relu, sigmoid,
                           softmax, sqrt, stack, sum, tanh, tensor, where, zeros, zeros_like)
from distbp.functions import *  # noqa: F401,F403  (torch.add, torch.split, torch.topk, ...)
from distbp.functions import __all__ as _functions

# torch's dtype aliases named like python builtins: distbp.float, distbp.long, distbp.bool ...
globals().update(_ALIASES)
strided = "strided"  # torch.strided, the only layout (accepted and ignored)
__version__ = _version()

__all__ = [
    "Tensor", "tensor", "from_numpy", "no_grad", "enable_grad", "inference_mode",
    "set_grad_enabled", "is_grad_enabled", "cat", "concat", "concatenate", "stack", "where",
    "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like",
    "randn", "rand", "randint", "randperm", "randn_like", "rand_like", "normal", "arange",
    "linspace", "eye", "manual_seed", "Generator", "device", "get_default_dtype",
    "set_default_dtype", "float32", "float64", "float16", "int64", "int32", "int16", "int8",
    "uint8", "bool_", *_ALIASES, "gradcheck", "autograd", "random", "cuda", "exp", "log", "sqrt",
    "abs", "tanh", "sigmoid", "relu", "clamp", "clip", "matmul", "softmax", "log_softmax",
    "maximum", "minimum", "sum", "mean", "argmax", "save", "load", "nn", "optim",
    *_functions,
]


def __getattr__(name):
    # nn and optim import lazily so the core stays importable while they are being built
    if name in ("nn", "optim", "comm", "distributed", "utils"):
        import importlib
        return importlib.import_module(f"distbp.{name}")
    if name in ("futures", "parallel"):
        import importlib
        return importlib.import_module(f"distbp.{name}")
    raise AttributeError(f"module 'distbp' has no attribute {name!r}")
