"""Tensor methods for maths, reductions and shapes (exp ... sin, clamp, sum/mean/var/max/logsumexp/
norm/cumsum, reshape/permute/squeeze/expand/repeat ...), a mixin of distbp.tensor.Tensor. Each is a
primitive from distbp/ops or composed from them; `axis=` is accepted as an alias of `dim=` (the
`dim_alias` decorator), as torch's argument parser does.
"""
import collections
import functools
import numbers

import numpy as np

from distbp.dtypes import int32, int64
from distbp.ops import elementwise as E
from distbp.ops import math as MA
from distbp.ops import movement as M
from distbp.ops import nn as NN
from distbp.ops import reduce as R


def _T():
    from distbp.tensor import Tensor
    return Tensor


def _data(x):
    return x.data if isinstance(x, _T()) else x


# torch.return_types.max / min: (values, indices) when a dim is given
max_result = collections.namedtuple("max", ["values", "indices"])
min_result = collections.namedtuple("min", ["values", "indices"])


def dim_alias(fn):
    """Accept numpy's `axis=` as an alias of `dim=` (torch's argument parser does the same)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "axis" in kwargs:
            if "dim" in kwargs:
                raise TypeError(f"{fn.__name__}(): got both dim= and its alias axis=")
            kwargs["dim"] = kwargs.pop("axis")
        return fn(*args, **kwargs)
    return wrapper


def _norm_dim(dim):
    if dim is None or isinstance(dim, (int, np.integer)):
        return dim
    return tuple(dim)


def _all_if_empty(dim):
    """amax/amin's dim=() means all dims."""
    dim = _norm_dim(dim)
    return None if dim == () else dim


def _no_grad_result(arr):
    """Results that torch gives a zero gradient (sign, floor, round ...): here a constant."""
    return _T()(np.asarray(arr))


class TensorMath:
    __slots__ = ()

    # ---------------------------------------------------------------- unary math
    def exp(self):
        return E.Exp.apply(self)

    def log(self):
        return E.Log.apply(self)

    def log2(self):
        return E.Log.apply(self) / np.log(2.0)

    def log10(self):
        return E.Log.apply(self) / np.log(10.0)

    def log1p(self):
        return E.Log.apply(self + 1)

    def expm1(self):
        return E.Exp.apply(self) - 1

    def sqrt(self):
        return E.Sqrt.apply(self)

    def rsqrt(self):
        return 1 / E.Sqrt.apply(self)

    def square(self):
        return self * self

    def reciprocal(self):
        return 1 / self

    def abs(self):
        return E.Abs.apply(self)

    absolute = abs

    def relu(self):
        return E.Relu.apply(self)

    def tanh(self):
        return E.Tanh.apply(self)

    def sigmoid(self):
        return E.Sigmoid.apply(self)

    def sin(self):
        return MA.Sin.apply(self)

    def cos(self):
        return MA.Cos.apply(self)

    def sign(self):
        return _no_grad_result(np.sign(self.data))

    def floor(self):
        return _no_grad_result(np.floor(self.data))

    def ceil(self):
        return _no_grad_result(np.ceil(self.data))

    def round(self, *, decimals=0):
        return _no_grad_result(np.round(self.data, decimals))

    def trunc(self):
        return _no_grad_result(np.trunc(self.data))

    def isnan(self):
        return _T()(np.isnan(self.data))

    def isinf(self):
        return _T()(np.isinf(self.data))

    def isfinite(self):
        return _T()(np.isfinite(self.data))

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        if isinstance(min, _T()) or isinstance(max, _T()):
            out = self  # tensor bounds: maximum/minimum, so the bounds get their grads too
            if min is not None:
                out = E.Where.apply(_data(out) >= _data(min), out, min)
            if max is not None:
                out = E.Where.apply(_data(out) <= _data(max), out, max)
            return out
        return E.Clip.apply(self, min=min, max=max)

    clip = clamp

    def clamp_min(self, min):
        return self.clamp(min=min)

    def clamp_max(self, max):
        return self.clamp(max=max)

    @dim_alias
    def softmax(self, dim, dtype=None):
        x = self if dtype is None else self.to(dtype)
        return NN.Softmax.apply(x, axis=dim)

    @dim_alias
    def log_softmax(self, dim, dtype=None):
        x = self if dtype is None else self.to(dtype)
        return NN.LogSoftmax.apply(x, axis=dim)

    # ---------------------------------------------------------------- reductions
    @dim_alias
    def sum(self, dim=None, keepdim=False, *, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if x.data.dtype.kind in "bu" or x.data.dtype in (int32, np.int16, np.int8):
            x = x.to(int64)  # torch sums bools and small ints as int64
        return R.Sum.apply(x, axis=_norm_dim(dim), keepdims=keepdim)

    @dim_alias
    def mean(self, dim=None, keepdim=False, *, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if x.data.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a "
                               f"floating point or complex dtype. Got: {x.dtype}")
        dim = _norm_dim(dim)
        return x.sum(dim, keepdim) / x._count(dim)

    def _count(self, dim):
        """Number of elements reduced over `dim` (None: all)."""
        if dim is None:
            return self.data.size
        dims = (dim,) if isinstance(dim, (int, np.integer)) else dim
        n = 1
        for d in dims:
            n *= self.data.shape[d]
        return n

    @dim_alias
    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        dim = _norm_dim(dim)
        ddof = (1 if unbiased else 0) if correction is None else correction
        centered = self - self.mean(dim, keepdim=True)
        return (centered * centered).sum(dim, keepdim) / max(self._count(dim) - ddof, 0)

    @dim_alias
    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    @dim_alias
    def max(self, dim=None, keepdim=False):
        if isinstance(dim, _T()):  # torch.max(input, other): elementwise
            return E.Where.apply(self.data >= dim.data, self, dim)
        if dim is None:
            return R.Max.apply(self)
        values = R.Max.apply(self, axis=dim, keepdims=keepdim)
        return max_result(values, self.argmax(dim, keepdim))

    @dim_alias
    def min(self, dim=None, keepdim=False):
        if isinstance(dim, _T()):
            return E.Where.apply(self.data <= dim.data, self, dim)
        if dim is None:
            return -R.Max.apply(-self)
        values = -R.Max.apply(-self, axis=dim, keepdims=keepdim)
        return min_result(values, self.argmin(dim, keepdim))

    def maximum(self, other):
        return E.Where.apply(self.data >= _data(other), self, other)

    def minimum(self, other):
        return E.Where.apply(self.data <= _data(other), self, other)

    @dim_alias
    def amax(self, dim=(), keepdim=False):
        return R.Max.apply(self, axis=_all_if_empty(dim), keepdims=keepdim)

    @dim_alias
    def amin(self, dim=(), keepdim=False):
        return -R.Max.apply(-self, axis=_all_if_empty(dim), keepdims=keepdim)

    @dim_alias
    def argmax(self, dim=None, keepdim=False):
        return _T()(np.argmax(self.data, axis=dim, keepdims=keepdim))

    @dim_alias
    def argmin(self, dim=None, keepdim=False):
        return _T()(np.argmin(self.data, axis=dim, keepdims=keepdim))

    @dim_alias
    def logsumexp(self, dim, keepdim=False):
        m = np.max(self.data, axis=_norm_dim(dim), keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        out = (self - m).exp().sum(dim, keepdim=True).log() + m
        return out if keepdim else out.squeeze(dim)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if p in ("fro", 2, 2.0):
            return (x * x).sum(dim, keepdim).sqrt()
        if p in (1, 1.0):
            return x.abs().sum(dim, keepdim)
        if p == float("inf"):
            return x.abs().amax(dim if dim is not None else (), keepdim)
        if isinstance(p, numbers.Real) and p > 0:
            return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)
        raise ValueError(f"norm: p={p!r} is not supported (use 'fro', 1, 2, inf or a positive number)")

    @dim_alias
    def cumsum(self, dim, *, dtype=None):
        x = self if dtype is None else self.to(dtype)
        return MA.Cumsum.apply(x, axis=dim % max(self.ndim, 1))

    @dim_alias
    def prod(self, dim=None, keepdim=False, *, dtype=None):
        if self.requires_grad:
            raise NotImplementedError("prod: no gradient in distbp yet (use exp(log(x).sum()) for "
                                      "positive x)")
        return _T()(np.asarray(np.prod(self.data, axis=dim, keepdims=keepdim, dtype=dtype)))

    @dim_alias
    def any(self, dim=None, keepdim=False):
        return _T()(np.asarray(np.any(self.data, axis=dim, keepdims=keepdim)))

    @dim_alias
    def all(self, dim=None, keepdim=False):
        return _T()(np.asarray(np.all(self.data, axis=dim, keepdims=keepdim)))

    @dim_alias
    def count_nonzero(self, dim=None):
        return _T()(np.asarray(np.count_nonzero(self.data, axis=dim), dtype=np.int64))

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
        return M.Reshape.apply(self, shape=tuple(shape))

    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], np.dtype):
            raise NotImplementedError("view(dtype): reinterpreting bits is not supported")
        return self.reshape(*shape)

    def view_as(self, other):
        return self.reshape(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and not isinstance(dims[0], numbers.Integral) else dims
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the "
                             f"{self.ndim} dims of shape {self.shape}")
        return M.Permute.apply(self, axes=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        if self.ndim == 0:
            return self
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return M.Permute.apply(self, axes=tuple(axes))

    swapdims = transpose

    def swapaxes(self, axis0, axis1):
        return self.transpose(axis0, axis1)

    @property
    def T(self):
        return M.Permute.apply(self, axes=tuple(range(self.ndim))[::-1])

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.T

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = start_dim % nd, end_dim % nd
        shape = self.shape[:s] + (-1,) + self.shape[e + 1:]
        return self.reshape(shape)

    def unflatten(self, dim, sizes):
        dim = dim % self.ndim
        return self.reshape(self.shape[:dim] + tuple(sizes) + self.shape[dim + 1:])

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            nd = max(self.ndim, 1)
            dims = {d % nd for d in ((dim,) if isinstance(dim, numbers.Integral) else dim)}
            shape = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *sizes):
        sizes = sizes[0] if len(sizes) == 1 and not isinstance(sizes[0], numbers.Integral) else sizes
        lead = len(sizes) - self.ndim
        sizes = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
        return M.Expand.apply(self, shape=sizes)

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *sizes):
        """Tile: repeat(2, 3) on (a, b) -> (2a, 3b); composed from expand + reshape."""
        sizes = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], numbers.Integral) \
            else sizes
        if len(sizes) < self.ndim:
            raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller "
                               f"than number of tensor dims ({self.ndim})")
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        inter = []
        for r, n in zip(sizes, x.shape):
            inter += [1, n]
        x = x.reshape(inter)
        tiled = []
        for r, n in zip(sizes, x.shape[1::2]):
            tiled += [r, n]
        return x.expand(tiled).reshape(tuple(r * n for r, n in zip(sizes, x.shape[1::2])))

    def contiguous(self, *, memory_format=None):
        return self
