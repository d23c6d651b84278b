"""dtypes and devices with torch's names: `distbp.float32`, `distbp.long`, `distbp.device("cpu")`.

A distbp dtype is a numpy dtype (so `x.dtype == distbp.float32` and numpy interop just work).
distbp computes on the CPU only: "cpu" (or "cpu:0", `device("cpu")`) is accepted wherever torch
takes a device; any other device raises at once instead of silently running elsewhere.
`parse_to(*args, **kwargs)` reads the arguments of `Tensor.to` / `Module.to` like torch does.
"""
import builtins

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
int16 = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

# torch's aliases; the ones named like python builtins are bound in distbp/__init__.py only
ALIASES = {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
           "short": int16, "bool": bool_}

_default_dtype = float32


def get_default_dtype():
    return _default_dtype


def set_default_dtype(d):
    """The dtype of python floats in tensor() and of zeros/ones/randn/... without dtype=."""
    global _default_dtype
    d = np.dtype(d)
    if d not in (float32, float64, float16):
        raise TypeError(f"set_default_dtype: only floating point types are supported, got {d}")
    _default_dtype = d


def as_dtype(dtype, default=None):
    """None -> `default` (the current default dtype if None); anything numpy understands -> np.dtype."""
    if dtype is None:
        return _default_dtype if default is None else np.dtype(default)
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in ALIASES:
        return ALIASES[dtype.removeprefix("torch.")]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype (use distbp.float32, distbp.long, ...)") from None


class device:
    """torch.device for the one device distbp has: device('cpu'), device('cpu', 0), device('cpu:0')."""

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu', got {type!r}")
        name, _, idx = type.partition(":")
        if idx:
            index = builtins.int(idx)
        if name != "cpu":
            raise RuntimeError(f"device {type!r} is not available: distbp computes on the CPU only "
                               f"(use 'cpu'; distbp.cuda.is_available() is False)")
        self.type, self.index = name, index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and other.type == self.type

    def __hash__(self):
        return hash(self.type)

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"


CPU = device("cpu")


def check_device(dev):
    """Accept None, 'cpu', device('cpu'); raise for anything else."""
    if dev is not None:
        device(dev)


def parse_to(*args, **kwargs):
    """to(device=None, dtype=None, non_blocking=False, copy=False), to(dtype, ...), to(tensor, ...)
    -> (dtype or None, copy)."""
    dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    copy = kwargs.pop("copy", False)
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    for a in args:
        if isinstance(a, device) or (isinstance(a, str) and a.removeprefix("torch.") not in ALIASES):
            dev = device(a)  # raises for any device but the CPU
        elif hasattr(a, "dtype") and hasattr(a, "shape"):  # to(other_tensor)
            dtype = a.dtype
        elif not isinstance(a, builtins.bool):  # bools: the positional non_blocking / copy flags
            dtype = as_dtype(a)
    check_device(dev)
    return (None if dtype is None else as_dtype(dtype)), copy
