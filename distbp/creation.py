"""Tensor creation with torch's signatures: tensor, from_numpy, zeros/ones/empty/full(_like),
rand/randn/randint/randperm/normal (optionally from a distbp.Generator), arange, linspace, eye.
dtype=None means torch's default (float32, or what set_default_dtype chose; int64 for integer
ranges and fills); device= accepts only the CPU."""
import numbers

import numpy as np

from distbp import dtypes as D
from distbp import random as _random
from distbp.dtypes import bool_, int64
from distbp.tensor import Tensor, _data, _default_array


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """Copy `data` into a new Tensor (python floats -> float32, numpy arrays keep their dtype)."""
    D.check_device(device)
    return Tensor(_default_array(data, None if dtype is None else D.as_dtype(dtype)), requires_grad)


def from_numpy(ndarray):
    """Wrap a numpy array without copying; the dtype is kept."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(ndarray).__name__}")
    return Tensor(ndarray)


def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape


def _new(arr, device, requires_grad):
    D.check_device(device)
    return Tensor(arr, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _new(np.zeros(_shape_args(size), dtype=D.as_dtype(dtype)), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _new(np.ones(_shape_args(size), dtype=D.as_dtype(dtype)), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _new(np.empty(_shape_args(size), dtype=D.as_dtype(dtype)), device, requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, bool):
        return bool_
    return int64 if isinstance(fill_value, numbers.Integral) else D.get_default_dtype()


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    dtype = D.as_dtype(dtype, _fill_dtype(fill_value))
    return _new(np.full(_shape_args((size,)), fill_value, dtype=dtype), device, requires_grad)


def _like(t, dtype):
    return D.as_dtype(dtype, t.dtype)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return _new(np.zeros(input.shape, dtype=_like(input, dtype)), device, requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return _new(np.ones(input.shape, dtype=_like(input, dtype)), device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return _new(np.empty(input.shape, dtype=_like(input, dtype)), device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    return _new(np.full(input.shape, fill_value, dtype=_like(input, dtype)), device, requires_grad)


def _gen(generator):
    return _random.default_generator() if generator is None else _random.numpy_generator(generator)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    data = _gen(generator).standard_normal(_shape_args(size), dtype=D.as_dtype(dtype))
    return _new(data, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    data = _gen(generator).random(_shape_args(size), dtype=D.as_dtype(dtype))
    return _new(data, device, requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    return randn(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False):
    return rand(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False):
    """randint(high, size) or randint(low, high, size), like torch."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    arr = _gen(generator).integers(low, high, size=_shape_args((size,)))
    return _new(arr.astype(D.as_dtype(dtype, int64)), device, requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    return _new(_gen(generator).permutation(n).astype(D.as_dtype(dtype, int64)), device,
                requires_grad)


def normal(mean, std, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """normal(mean_tensor, std_tensor), normal(float, float, size)."""
    shape = _shape_args((size,)) if size is not None else np.broadcast_shapes(np.shape(_data(mean)),
                                                                            np.shape(_data(std)))
    arr = _gen(generator).normal(_data(mean), _data(std), size=shape)
    fallback = mean.dtype if isinstance(mean, Tensor) else None
    return _new(arr.astype(D.as_dtype(dtype, fallback)), device, requires_grad)


def arange(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    start, end, step = _data(start), _data(end), _data(step)
    arr = np.arange(start, end, step)
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) or (isinstance(v, np.ndarray) and
                                                           v.dtype.kind in "iu")
                       for v in (start, end, step))
        dtype = int64 if integral else D.get_default_dtype()
    return _new(arr.astype(D.as_dtype(dtype)), device, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    return _new(np.linspace(start, end, steps).astype(D.as_dtype(dtype)), device, requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    return _new(np.eye(n, m, dtype=D.as_dtype(dtype)), device, requires_grad)
