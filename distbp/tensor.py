"""Tensor: a numpy array plus the autograd graph node that produced it.

Operators and methods call the primitives in distbp/ops (forward and backward side by side) or are
composed from them; composed ops (mean, var, std, min, softmax, flatten ...) own no backward.
Names and signatures follow PyTorch (`dim=`, `keepdim=`, `.grad`, `.backward()`); `axis=` is
accepted as an alias of `dim=` where torch accepts it. Selection, sorting, splitting and the
in-place methods (`add_`, `copy_`, `x[i] = v`, ...) live in tensor_ops.py (the TensorOps mixin).
"""
import collections
import functools
import numbers

import numpy as np

from distbp import autograd
from distbp import dtypes as D
from distbp import random as _random
from distbp.ops import elementwise as E
from distbp.ops import linalg as L
from distbp.ops import math as MA
from distbp.ops import movement as M
from distbp.ops import nn as NN
from distbp.ops import reduce as R
from distbp.dtypes import bool_, float16, float32, float64, int32, int64  # noqa: F401
from distbp.tensor_ops import TensorOps

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


def _check_grad_dtype(dtype):
    if dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require gradients, got dtype {dtype}")


def _default_array(data, dtype):
    """torch.tensor rules: python floats -> the default dtype (float32), ints -> int64; numpy
    arrays keep their dtype."""
    if isinstance(data, Tensor):
        arr = data.data.copy()
    elif isinstance(data, np.ndarray):
        arr = data.copy()
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
            data = [d.data if isinstance(d, Tensor) else d for d in data]
        arr = np.array(data)
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(D.get_default_dtype())
        elif dtype is None and arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def _norm_dim(dim):
    if dim is None or isinstance(dim, (int, np.integer)):
        return dim
    return tuple(dim)


def _all_if_empty(dim):
    """amax/amin's dim=() means all dims."""
    dim = _norm_dim(dim)
    return None if dim == () else dim


class _HookHandle:
    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


def _no_grad_result(arr):
    """Results that torch gives a zero gradient (sign, floor, round ...): here a constant."""
    return Tensor(np.asarray(arr))


class Tensor(TensorOps):
    """An n-dimensional array that records the ops applied to it for backward()."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "__weakref__")
    __array_priority__ = 1000  # numpy array (op) Tensor -> our reflected operator, not numpy's

    def __init__(self, data, requires_grad=False, dtype=None):
        arr = data if (isinstance(data, np.ndarray) and dtype is None) else _default_array(data, dtype)
        self.data = arr
        self.grad = None
        self._ctx = None
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- properties and conversion
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def device(self):
        return D.CPU

    is_cuda = False

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def dim(self):
        return self.data.ndim

    ndimension = dim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    nelement = numel

    def element_size(self):
        return self.data.itemsize

    def is_floating_point(self):
        return self.data.dtype.kind == "f"

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def numpy(self, *, force=False):
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """A tensor sharing this one's data, outside the graph."""
        return Tensor(self.data)

    def detach_(self):
        if self._ctx is not None:
            self._ctx = None
        self.requires_grad = False
        return self

    def clone(self, *, memory_format=None):
        return E.Mul.apply(self, 1) if self.requires_grad else Tensor(self.data.copy())

    def requires_grad_(self, requires_grad=True):
        if requires_grad:
            _check_grad_dtype(self.data.dtype)
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, *args, **kwargs):
        """to(dtype), to(device), to(device, dtype), to(other), to(..., copy=True); devices: 'cpu'."""
        dtype, copy = D.parse_to(*args, **kwargs)
        if dtype is None or dtype == self.data.dtype:
            return self.clone() if copy else self
        if self.requires_grad:
            _check_grad_dtype(dtype)
            return _Cast.apply(self, dtype=dtype)
        return Tensor(self.data.astype(dtype))

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            return f"distbp.{self.data.dtype}"
        return self.to(dtype)

    def type_as(self, other):
        return self.to(other.dtype)

    def cpu(self):
        return self

    def cuda(self, device=None, non_blocking=False):
        raise RuntimeError("Tensor.cuda(): distbp computes on the CPU only; use .to('cpu') or drop "
                           "the call")

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def half(self):
        return self.to(float16)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def bool(self):
        return self.to(bool_)

    def __repr__(self):
        extra = "" if self.data.dtype in (float32, int64, bool_) else f", dtype=distbp.{self.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({np.array2string(self.data, separator=', ')}{extra})"

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __index__(self):
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if create_graph or inputs is not None:
            raise NotImplementedError("backward(): create_graph and inputs are not supported by "
                                      "distbp's engine (first-order gradients into every leaf)")
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn "
                               "(did you run the forward under no_grad, or forget requires_grad=True?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be implicitly created only for scalar "
                                   f"outputs, got shape {self.shape}; pass gradient=")
            gradient = np.ones(self.data.shape, dtype=self.data.dtype)
        else:
            gradient = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient,
                                  dtype=self.data.dtype)
        autograd.backward(self, gradient, retain_graph=bool(retain_graph))

    def retain_grad(self):
        """Keep .grad on a non-leaf tensor after backward (leaves always keep it)."""
        if self._ctx is not None:
            import weakref
            self._ctx._retained = weakref.ref(self)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(tensor) during backward as soon as this leaf's .grad got its last contribution.

        The data-parallel reducer uses it to start reducing a bucket while backward continues
        with earlier layers. Returns a handle with .remove().
        """
        if self._ctx is not None:
            raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a post-accumulate-grad hook on a tensor that "
                               "does not require grad")
        if self._hooks is None:
            self._hooks = {"post_acc": {}, "next": 0}
        key = self._hooks["next"]
        self._hooks["next"] = key + 1
        self._hooks["post_acc"][key] = hook
        return _HookHandle(self._hooks["post_acc"], key)

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, o):
        return E.Add.apply(self, o)

    def __radd__(self, o):
        return E.Add.apply(o, self)

    def __sub__(self, o):
        return E.Sub.apply(self, o)

    def __rsub__(self, o):
        return E.Sub.apply(o, self)

    def __mul__(self, o):
        return E.Mul.apply(self, o)

    def __rmul__(self, o):
        return E.Mul.apply(o, self)

    def __truediv__(self, o):
        return E.Div.apply(self, o)

    def __rtruediv__(self, o):
        return E.Div.apply(o, self)

    def __pow__(self, o):
        return E.Pow.apply(self, o)

    def __rpow__(self, o):
        return E.Pow.apply(o, self)

    def __matmul__(self, o):
        return L.MatMul.apply(self, o)

    def __rmatmul__(self, o):
        return L.MatMul.apply(o, self)

    def __neg__(self):
        return E.Neg.apply(self)

    def __pos__(self):
        return self

    # integer/boolean arithmetic: no gradient (torch's floor_divide/remainder/bitwise have none)
    def __floordiv__(self, o):
        return _no_grad_result(self.data // _data(o))

    def __rfloordiv__(self, o):
        return _no_grad_result(_data(o) // self.data)

    def __mod__(self, o):
        return _no_grad_result(self.data % _data(o))

    def __rmod__(self, o):
        return _no_grad_result(_data(o) % self.data)

    def __and__(self, o):
        return Tensor(self.data & _data(o))

    __rand__ = __and__

    def __or__(self, o):
        return Tensor(self.data | _data(o))

    __ror__ = __or__

    def __xor__(self, o):
        return Tensor(self.data ^ _data(o))

    __rxor__ = __xor__

    def __invert__(self):
        return Tensor(~self.data)

    def __getitem__(self, index):
        return M.GetItem.apply(self, index=_index_data(index))

    # comparisons: no grad, bool tensors
    def __eq__(self, o):
        return Tensor(np.asarray(self.data == _data(o)))

    def __ne__(self, o):
        return Tensor(np.asarray(self.data != _data(o)))

    def __lt__(self, o):
        return Tensor(np.asarray(self.data < _data(o)))

    def __le__(self, o):
        return Tensor(np.asarray(self.data <= _data(o)))

    def __gt__(self, o):
        return Tensor(np.asarray(self.data > _data(o)))

    def __ge__(self, o):
        return Tensor(np.asarray(self.data >= _data(o)))

    __hash__ = object.__hash__

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

    def equal(self, other):
        return self.shape == other.shape and bool(np.array_equal(self.data, _data(other)))

    def logical_and(self, other):
        return Tensor(np.logical_and(self.data, _data(other)))

    def logical_or(self, other):
        return Tensor(np.logical_or(self.data, _data(other)))

    def logical_not(self):
        return Tensor(np.logical_not(self.data))

    def add(self, other, *, alpha=1):
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        return self - (other if alpha == 1 else other * alpha)

    subtract = sub

    def mul(self, other):
        return self * other

    multiply = mul

    def div(self, other, *, rounding_mode=None):
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":
            return _no_grad_result(np.trunc(self.data / _data(other)))
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")

    divide = div

    def true_divide(self, other):
        return self / other

    def floor_divide(self, other):
        return self // other

    def remainder(self, other):
        return self % other

    def pow(self, exponent):
        return self ** exponent

    def matmul(self, other):
        return self @ other

    def mm(self, mat2):
        return self @ mat2

    def bmm(self, mat2):
        return self @ mat2

    def neg(self):
        return -self

    negative = neg

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
        return Tensor(np.isnan(self.data))

    def isinf(self):
        return Tensor(np.isinf(self.data))

    def isfinite(self):
        return Tensor(np.isfinite(self.data))

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
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
        if isinstance(dim, Tensor):  # torch.max(input, other): elementwise
            return E.Where.apply(self.data >= dim.data, self, dim)
        if dim is None:
            return R.Max.apply(self)
        values = R.Max.apply(self, axis=dim, keepdims=keepdim)
        return max_result(values, self.argmax(dim, keepdim))

    @dim_alias
    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
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
        return Tensor(np.argmax(self.data, axis=dim, keepdims=keepdim))

    @dim_alias
    def argmin(self, dim=None, keepdim=False):
        return Tensor(np.argmin(self.data, axis=dim, keepdims=keepdim))

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
        return Tensor(np.asarray(np.prod(self.data, axis=dim, keepdims=keepdim, dtype=dtype)))

    @dim_alias
    def any(self, dim=None, keepdim=False):
        return Tensor(np.asarray(np.any(self.data, axis=dim, keepdims=keepdim)))

    @dim_alias
    def all(self, dim=None, keepdim=False):
        return Tensor(np.asarray(np.all(self.data, axis=dim, keepdims=keepdim)))

    @dim_alias
    def count_nonzero(self, dim=None):
        return Tensor(np.asarray(np.count_nonzero(self.data, axis=dim), dtype=np.int64))

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


class _Cast(autograd.Function):
    """dtype conversion between floating types; the grad is cast back."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


autograd._Tensor = Tensor


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _index_data(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else (np.asarray(i) if isinstance(i, list) else i)
                     for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


# ---------------------------------------------------------------- creation

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


# ---------------------------------------------------------------- functions over tensors

@dim_alias
def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return M.Cat.apply(*tensors, axis=dim)


concat = cat


def concatenate(tensors, axis=0):
    return cat(tensors, axis)


@dim_alias
def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(np.shape(_data(t))) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    nd = len(next(iter(shapes))) + 1
    return cat([t.unsqueeze(dim % nd) if isinstance(t, Tensor) else Tensor(np.expand_dims(t, dim % nd))
                for t in tensors], dim=dim)


def where(condition, input=None, other=None):
    if input is None and other is None:  # where(condition) == nonzero(condition, as_tuple=True)
        return tuple(Tensor(i) for i in np.nonzero(_data(condition)))
    return E.Where.apply(np.asarray(_data(condition), dtype=bool), input, other)


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def exp(input):
    return _as_tensor(input).exp()


def log(input):
    return _as_tensor(input).log()


def sqrt(input):
    return _as_tensor(input).sqrt()


def abs(input):
    return _as_tensor(input).abs()


def tanh(input):
    return _as_tensor(input).tanh()


def sigmoid(input):
    return _as_tensor(input).sigmoid()


def relu(input):
    return _as_tensor(input).relu()


def clamp(input, min=None, max=None):
    return _as_tensor(input).clamp(min, max)


clip = clamp


def matmul(input, other):
    return L.MatMul.apply(input, other)


@dim_alias
def softmax(input, dim, dtype=None):
    return input.softmax(dim, dtype)


@dim_alias
def log_softmax(input, dim, dtype=None):
    return input.log_softmax(dim, dtype)


def maximum(input, other):
    return where(_data(input) >= _data(other), input, other)


def minimum(input, other):
    return where(_data(input) <= _data(other), input, other)


@dim_alias
def sum(input, dim=None, keepdim=False, *, dtype=None):
    return input.sum(dim, keepdim, dtype=dtype)


@dim_alias
def mean(input, dim=None, keepdim=False, *, dtype=None):
    return input.mean(dim, keepdim, dtype=dtype)


@dim_alias
def argmax(input, dim=None, keepdim=False):
    return input.argmax(dim, keepdim)
