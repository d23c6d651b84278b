"""Tensor: a numpy array plus the autograd graph node that produced it.

Operators and methods call the primitives in distbp/ops (forward and backward side by side) or are
composed from them; composed ops (mean, var, std, min, softmax, flatten ...) own no backward.
Names and signatures follow PyTorch (`dim=`, `keepdim=`, `.grad`, `.backward()`); `axis=` is
accepted as an alias of `dim=` where torch accepts it. Selection, sorting, splitting and the
in-place methods (`add_`, `copy_`, `x[i] = v`, ...) live in tensor_ops.py (the TensorOps mixin), maths,
reductions and shapes in tensor_math.py (TensorMath), creation functions in creation.py.
"""
import operator

import numpy as np

from distbp import autograd
from distbp import dtypes as D
from distbp.dtypes import bool_, float16, float32, float64, int32, int64  # noqa: F401
from distbp.ops import elementwise as E
from distbp.ops import linalg as L
from distbp.ops import movement as M
from distbp.tensor_math import (TensorMath, _no_grad_result, _norm_dim, dim_alias,  # noqa: F401
                                max_result, min_result)
from distbp.tensor_ops import TensorOps

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


class _HookHandle:
    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


def _compare(name):
    """The comparison `name` (eq, lt, ...) as a method: elementwise, no grad, a bool Tensor."""
    op = getattr(operator, name)

    def method(self, other):
        return Tensor(np.asarray(op(self.data, _data(other))))
    method.__name__ = method.__qualname__ = f"__{name}__"
    return method


class Tensor(TensorMath, TensorOps):
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

    # comparisons: no grad, bool tensors; x.eq(y) is x == y, and so on
    __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = (
        _compare(n) for n in ("eq", "ne", "lt", "le", "gt", "ge"))
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    __hash__ = object.__hash__

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


# creation functions, re-exported: older code imports them from distbp.tensor
from distbp.creation import (arange, empty, empty_like, eye, from_numpy, full, full_like,  # noqa: E402,F401
                             linspace, normal, ones, ones_like, rand, rand_like, randint, randn,
                             randn_like, randperm, tensor, zeros, zeros_like)


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


def _unary(name, module=__name__):
    """torch.<name>(input) == input.<name>() (a number or an array becomes a Tensor first)."""
    def fn(input):
        return getattr(_as_tensor(input), name)()
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = module
    return fn


def _binary(name, module=__name__):
    """torch.<name>(input, other) == input.<name>(other)."""
    def fn(input, other):
        return getattr(_as_tensor(input), name)(other)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = module
    return fn


exp, log, sqrt, abs, tanh, sigmoid, relu = (
    _unary(n) for n in ("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu"))


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
