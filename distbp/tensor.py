"""Tensor: a numpy array plus the autograd graph node that produced it.

Operators and methods call the primitives in distbp/ops (forward and backward side by side) or are
composed from them; composed ops (mean, var, std, min, softmax, flatten ...) own no backward.
Names and signatures follow PyTorch (`dim=`, `keepdim=`, `.grad`, `.backward()`).
"""
import collections
import numbers

import numpy as np

from distbp import autograd
from distbp import random as _random
from distbp.ops import elementwise as E
from distbp.ops import linalg as L
from distbp.ops import movement as M
from distbp.ops import nn as NN
from distbp.ops import reduce as R

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
bool_ = np.dtype(np.bool_)

# torch.return_types.max / min: (values, indices) when a dim is given
max_result = collections.namedtuple("max", ["values", "indices"])
min_result = collections.namedtuple("min", ["values", "indices"])


def _check_grad_dtype(dtype):
    if dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require gradients, got dtype {dtype}")


def _default_array(data, dtype):
    """torch.tensor rules: python floats -> float32, ints -> int64; numpy arrays keep their dtype."""
    if isinstance(data, Tensor):
        arr = data.data.copy()
    elif isinstance(data, np.ndarray):
        arr = data.copy()
    else:
        arr = np.array(data)
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
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


class _HookHandle:
    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


class Tensor:
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
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def numpy(self):
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        return Tensor(self.data)

    def clone(self):
        return self * 1 if self.requires_grad else Tensor(self.data.copy())

    def requires_grad_(self, requires_grad=True):
        if requires_grad:
            _check_grad_dtype(self.data.dtype)
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, dtype):
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if self.requires_grad:
            _check_grad_dtype(dtype)
            return _Cast.apply(self, dtype=dtype)
        return Tensor(self.data.astype(dtype))

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({np.array2string(self.data, separator=', ')}, dtype={self.dtype}{extra})"

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=False):
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
        autograd.backward(self, gradient, retain_graph=retain_graph)

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

    def zero_(self):
        self.data[...] = 0
        return self

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

    def __getitem__(self, index):
        return M.GetItem.apply(self, index=_index_data(index))

    # comparisons: no grad, bool tensors
    def __eq__(self, o):
        return Tensor(self.data == _data(o))

    def __ne__(self, o):
        return Tensor(self.data != _data(o))

    def __lt__(self, o):
        return Tensor(self.data < _data(o))

    def __le__(self, o):
        return Tensor(self.data <= _data(o))

    def __gt__(self, o):
        return Tensor(self.data > _data(o))

    def __ge__(self, o):
        return Tensor(self.data >= _data(o))

    __hash__ = object.__hash__

    def add(self, o):
        return self + o

    def sub(self, o):
        return self - o

    def mul(self, o):
        return self * o

    def div(self, o):
        return self / o

    def pow(self, o):
        return self ** o

    def matmul(self, o):
        return self @ o

    def neg(self):
        return -self

    # ---------------------------------------------------------------- unary math
    def exp(self):
        return E.Exp.apply(self)

    def log(self):
        return E.Log.apply(self)

    def sqrt(self):
        return E.Sqrt.apply(self)

    def abs(self):
        return E.Abs.apply(self)

    def relu(self):
        return E.Relu.apply(self)

    def tanh(self):
        return E.Tanh.apply(self)

    def sigmoid(self):
        return E.Sigmoid.apply(self)

    def clamp(self, min=None, max=None):
        return E.Clip.apply(self, min=min, max=max)

    clip = clamp

    def softmax(self, dim):
        return NN.Softmax.apply(self, axis=dim)

    def log_softmax(self, dim):
        return NN.LogSoftmax.apply(self, axis=dim)

    # ---------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False):
        return R.Sum.apply(self, axis=_norm_dim(dim), keepdims=keepdim)

    def mean(self, dim=None, keepdim=False):
        dim = _norm_dim(dim)
        return self.sum(dim, keepdim) / self._count(dim)

    def _count(self, dim):
        """Number of elements reduced over `dim` (None: all)."""
        if dim is None:
            return self.data.size
        dims = (dim,) if isinstance(dim, (int, np.integer)) else dim
        n = 1
        for d in dims:
            n *= self.data.shape[d]
        return n

    def var(self, dim=None, keepdim=False, unbiased=True, correction=None):
        dim = _norm_dim(dim)
        ddof = (1 if unbiased else 0) if correction is None else correction
        centered = self - self.mean(dim, keepdim=True)
        return (centered * centered).sum(dim, keepdim) / (self._count(dim) - ddof)

    def std(self, dim=None, keepdim=False, unbiased=True, correction=None):
        return self.var(dim, keepdim, unbiased, correction).sqrt()

    def max(self, dim=None, keepdim=False):
        if dim is None:
            return R.Max.apply(self)
        values = R.Max.apply(self, axis=dim, keepdims=keepdim)
        return max_result(values, self.argmax(dim, keepdim))

    def min(self, dim=None, keepdim=False):
        if dim is None:
            return -R.Max.apply(-self)
        values = -R.Max.apply(-self, axis=dim, keepdims=keepdim)
        return min_result(values, self.argmin(dim, keepdim))

    def amax(self, dim=None, keepdim=False):
        return R.Max.apply(self, axis=_norm_dim(dim), keepdims=keepdim)

    def argmax(self, dim=None, keepdim=False):
        return Tensor(np.argmax(self.data, axis=dim, keepdims=keepdim))

    def argmin(self, dim=None, keepdim=False):
        return Tensor(np.argmin(self.data, axis=dim, keepdims=keepdim))

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return M.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the "
                             f"{self.ndim} dims of shape {self.shape}")
        return M.Permute.apply(self, axes=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return M.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self):
        return M.Permute.apply(self, axes=tuple(range(self.ndim))[::-1])

    def t(self):
        return self.T

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = start_dim % nd, end_dim % nd
        shape = self.shape[:s] + (-1,) + self.shape[e + 1:]
        return self.reshape(shape)

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            dims = {d % self.ndim for d in ((dim,) if isinstance(dim, int) else dim)}
            shape = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        lead = len(shape) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return M.Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def contiguous(self):
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
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


# ---------------------------------------------------------------- creation

def tensor(data, requires_grad=False, dtype=None):
    """Copy `data` into a new Tensor (python floats -> float32, numpy arrays keep their dtype)."""
    return Tensor(_default_array(data, None if dtype is None else np.dtype(dtype)), requires_grad)


def from_numpy(array):
    """Wrap a numpy array without copying; the dtype is kept."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape


def zeros(*shape, dtype=float32, requires_grad=False):
    return Tensor(np.zeros(_shape_args(shape), dtype=dtype), requires_grad)


def ones(*shape, dtype=float32, requires_grad=False):
    return Tensor(np.ones(_shape_args(shape), dtype=dtype), requires_grad)


def full(shape, fill_value, dtype=float32, requires_grad=False):
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad)


def randn(*shape, dtype=float32, requires_grad=False):
    data = _random.default_generator().standard_normal(_shape_args(shape), dtype=np.dtype(dtype))
    return Tensor(data, requires_grad)


def rand(*shape, dtype=float32, requires_grad=False):
    data = _random.default_generator().random(_shape_args(shape), dtype=np.dtype(dtype))
    return Tensor(data, requires_grad)


def randint(low, high, size, dtype=int64):
    return Tensor(_random.default_generator().integers(low, high, size=size).astype(dtype))


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    if dtype is None:
        dtype = float32 if arr.dtype.kind == "f" else int64
    return Tensor(arr.astype(dtype), requires_grad)


# ---------------------------------------------------------------- functions over tensors

def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return M.Cat.apply(*tensors, axis=dim)


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


def where(condition, input, other):
    return E.Where.apply(_data(condition), input, other)


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def exp(x):
    return _as_tensor(x).exp()


def log(x):
    return _as_tensor(x).log()


def sqrt(x):
    return _as_tensor(x).sqrt()


def abs(x):
    return _as_tensor(x).abs()


def tanh(x):
    return _as_tensor(x).tanh()


def sigmoid(x):
    return _as_tensor(x).sigmoid()


def relu(x):
    return _as_tensor(x).relu()


def clamp(x, min=None, max=None):
    return _as_tensor(x).clamp(min, max)


def matmul(a, b):
    return L.MatMul.apply(a, b)


def softmax(x, dim):
    return x.softmax(dim)


def log_softmax(x, dim):
    return x.log_softmax(dim)


def maximum(a, b):
    return where(_data(a) >= _data(b), a, b)


def minimum(a, b):
    return where(_data(a) <= _data(b), a, b)


def sum(x, dim=None, keepdim=False):
    return x.sum(dim, keepdim)


def mean(x, dim=None, keepdim=False):
    return x.mean(dim, keepdim)


def argmax(x, dim=None, keepdim=False):
    return x.argmax(dim, keepdim)
