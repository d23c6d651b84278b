"""Tensor methods composed from the primitives: selection (gather, index_select, masked_fill, tril),
sorting (sort, argsort, topk), splitting (split, chunk, unbind), flip/movedim/roll, sampling, and
the in-place methods (`x[i] = v`, copy_, fill_, add_, ...), as a mixin of distbp.tensor.Tensor.

In-place semantics follow torch: on a tensor outside any graph the numpy data is written in place
(views and state_dict entries see the change); on a tensor that is part of a graph, or when the
written value requires grad, the tensor is rebased onto the result's graph node so backward is
exact; on a leaf that requires grad it raises, as torch does, unless inside no_grad. An indexed
view (row = y[0]) written in place while autograd records writes through to its base, as in
torch; other views (x.t(), x.reshape(...)) raise instead of silently leaving the base unchanged.
"""
import collections
import numbers

import numpy as np

from distbp import autograd
from distbp import random as _random
from distbp.ops import elementwise as E
from distbp.ops import index as IX
from distbp.ops import movement as M
from distbp.ops.movement import _is_basic

# torch.return_types.sort / topk
_sort_result = collections.namedtuple("sort", ["values", "indices"])
_topk_result = collections.namedtuple("topk", ["values", "indices"])

def _unary_inplace(name):
    """The method `<name>_`: the tensor becomes `self.<name>()`, written in place by _write."""
    def method(self):
        return self._write(lambda old: getattr(old, name)())
    method.__name__, method.__qualname__ = f"{name}_", f"TensorOps.{name}_"
    return method


_VIEW_INPLACE = ("in-place op on a reshaped/permuted/expanded view of another tensor while autograd "
                 "records: torch would write through to the base tensor, distbp only does so for "
                 "indexed views (x[i]); apply it to the base, or clone() first")
_LEAF_INPLACE = ("a leaf Variable that requires grad is being used in an in-place operation "
                 "(wrap it in distbp.no_grad(), or write to .data)")


def _T():
    from distbp.tensor import Tensor
    return Tensor


def _data(x):
    return x.data if isinstance(x, _T()) else x


def _alias(t):
    """A second Tensor object for the same data and graph node (the pre-write value)."""
    T = _T()
    a = T.__new__(T)
    a.data, a.grad, a._hooks, a._ctx, a.requires_grad = t.data, None, None, t._ctx, t.requires_grad
    return a


class TensorOps:
    __slots__ = ()

    # ---------------------------------------------------------------- in-place machinery
    def _write(self, fn):
        """Apply `fn(old) -> new Tensor` in place, with torch's rules (see module docstring)."""
        grad_on = autograd.is_grad_enabled()
        if grad_on and self.requires_grad and self._ctx is None:
            raise RuntimeError(_LEAF_INPLACE)
        out = fn(_alias(self))
        if grad_on and out.requires_grad:
            if self.data.base is not None and self._ctx is not None:
                return self._write_through_view(out)
            if out.data.dtype != self.data.dtype:
                out = out.to(self.data.dtype)
            self.data, self._ctx, self.requires_grad = out.data, out._ctx, True
        else:
            if out.data.shape != self.data.shape:
                raise RuntimeError(f"in-place: the result of shape {out.data.shape} does not match "
                                   f"the tensor of shape {self.data.shape}")
            np.copyto(self.data, out.data, casting="same_kind")
        return self

    def _write_through_view(self, out):
        """In-place on base[index] (a basic-index view) while autograd records: write the new
        value into the base (SetItem, so the base's graph is exact), then read the view again,
        as torch's views share storage. Other views (reshape, permute, expand) raise."""
        node = self._ctx
        base = node.parents[0] if type(node) is M.GetItem and _is_basic(node.index) else None
        if not isinstance(base, _T()):
            raise RuntimeError(_VIEW_INPLACE)
        index = node.index
        base._write(lambda old: IX.SetItem.apply(old, out, index=index))
        view = M.GetItem.apply(base, index=index)
        self.data, self._ctx, self.requires_grad = view.data, view._ctx, view.requires_grad
        return self

    def __setitem__(self, index, value):
        from distbp.tensor import _index_data
        idx = _index_data(index)
        if not (autograd.is_grad_enabled() and (self.requires_grad or getattr(value, "requires_grad",
                                                                              False))):
            self.data[idx] = _data(value)  # plain write: shared storage sees it
            return
        self._write(lambda old: IX.SetItem.apply(old, value, index=idx))

    def copy_(self, src, non_blocking=False):
        src_shape = np.shape(_data(src))
        if np.broadcast_shapes(src_shape, self.shape) != self.shape:
            raise RuntimeError(f"copy_: the source of shape {src_shape} cannot be broadcast to "
                               f"the destination of shape {self.shape}")
        return self._write(lambda old: E.Add.apply(old * 0, src) if getattr(src, "requires_grad", False)
                           else _T()(np.broadcast_to(np.asarray(_data(src)), self.shape)))

    def fill_(self, value):
        return self._write(lambda old: _T()(np.full(self.shape, _data(value), dtype=self.dtype)))

    def zero_(self):
        return self.fill_(0)

    def add_(self, other, *, alpha=1):
        return self._write(lambda old: old.add(other, alpha=alpha))

    def sub_(self, other, *, alpha=1):
        return self._write(lambda old: old.sub(other, alpha=alpha))

    def mul_(self, other):
        return self._write(lambda old: old * other)

    def div_(self, other, *, rounding_mode=None):
        return self._write(lambda old: old.div(other, rounding_mode=rounding_mode))

    def pow_(self, exponent):
        return self._write(lambda old: old ** exponent)

    # in place: self = self.<name>()
    neg_, abs_, exp_, log_, sqrt_, relu_, sigmoid_, tanh_ = (
        _unary_inplace(n) for n in ("neg", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh"))

    def clamp_(self, min=None, max=None):
        return self._write(lambda old: old.clamp(min, max))

    clip_ = clamp_

    def masked_fill_(self, mask, value):
        return self._write(lambda old: old.masked_fill(mask, value))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        gen = _random.numpy_generator(generator)
        return self._write(lambda old: _T()(gen.uniform(from_, to, self.shape)))

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        gen = _random.numpy_generator(generator)
        return self._write(lambda old: _T()(gen.normal(mean, std, self.shape)))

    # ---------------------------------------------------------------- selection
    def masked_fill(self, mask, value):
        mask = np.asarray(_data(mask), dtype=bool)
        if getattr(value, "requires_grad", False):
            return E.Where.apply(mask, value, self)
        return E.Where.apply(mask, np.asarray(_data(value), dtype=self.dtype), self)

    def where(self, condition, other):
        from distbp.tensor import where
        return where(condition, self, other)

    def tril(self, diagonal=0):
        keep = np.tri(*self.shape[-2:], k=diagonal, dtype=bool)
        return E.Where.apply(keep, self, np.zeros((), dtype=self.dtype))

    def triu(self, diagonal=0):
        keep = ~np.tri(*self.shape[-2:], k=diagonal - 1, dtype=bool)
        return E.Where.apply(keep, self, np.zeros((), dtype=self.dtype))

    def gather(self, dim, index):
        """out[i][j] = self[index[i][j]][j] (dim=0) ...: one advanced GetItem."""
        idx = np.asarray(_data(index))
        if idx.ndim != self.ndim:
            raise RuntimeError(f"gather: index has {idx.ndim} dims, input has {self.ndim}")
        grids = list(np.indices(idx.shape, sparse=True))
        grids[dim % self.ndim] = idx
        return M.GetItem.apply(self, index=tuple(grids))

    def take_along_dim(self, indices, dim=None):
        if dim is None:
            return self.flatten().gather(0, np.asarray(_data(indices)).reshape(-1))
        return self.gather(dim, indices)

    def index_select(self, dim, index):
        idx = (slice(None),) * (dim % self.ndim) + (np.asarray(_data(index)).reshape(-1),)
        return M.GetItem.apply(self, index=idx)

    def masked_select(self, mask):
        mask = np.broadcast_to(np.asarray(_data(mask), dtype=bool), self.shape)
        return M.GetItem.apply(self, index=mask)

    def nonzero(self, *, as_tuple=False):
        nz = np.nonzero(self.data)
        T = _T()
        return tuple(T(i) for i in nz) if as_tuple else T(np.stack(nz, axis=1).astype(np.int64))

    def narrow(self, dim, start, length):
        idx = (slice(None),) * (dim % self.ndim) + (slice(start, start + length),)
        return self[idx]

    def select(self, dim, index):
        return self[(slice(None),) * (dim % self.ndim) + (index,)]

    # ---------------------------------------------------------------- sorting
    def sort(self, dim=-1, descending=False, *, stable=False):
        order = self.argsort(dim, descending, stable=stable)
        return _sort_result(self.gather(dim, order), order)

    def argsort(self, dim=-1, descending=False, *, stable=False):
        a = self.data
        if descending:  # a stable descending sort: stable ascending sort of the negated keys
            a = -a if a.dtype.kind != "b" else ~a
        return _T()(np.argsort(a, axis=dim, kind="stable").astype(np.int64))

    def topk(self, k, dim=-1, largest=True, sorted=True):
        n = self.shape[dim]
        if not 0 <= k <= n:
            raise RuntimeError(f"topk: k={k} is out of range for dimension {dim} of size {n}")
        order = self.argsort(dim, descending=largest, stable=True)
        idx = order.data.take(np.arange(k), axis=dim)
        return _topk_result(self.gather(dim, idx), _T()(idx))

    def msort(self):
        return self.sort(0).values

    # ---------------------------------------------------------------- splitting and moving dims
    def split(self, split_size, dim=0):
        n = self.shape[dim]
        if isinstance(split_size, numbers.Integral):
            sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
        else:
            sizes = list(split_size)
            if sum(sizes) != n:
                raise RuntimeError(f"split: sizes {sizes} do not add up to {n} (dim {dim})")
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(dim, start, s))
            start += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        n = self.shape[dim]
        size = -(-n // chunks)
        return self.split(max(size, 1), dim)

    def tensor_split(self, indices_or_sections, dim=0):
        n = self.shape[dim]
        if isinstance(indices_or_sections, numbers.Integral):
            k = indices_or_sections
            bounds = [i * (n // k) + min(i, n % k) for i in range(k + 1)]
        else:
            bounds = [0] + list(indices_or_sections) + [n]
        return tuple(self.narrow(dim, a, max(b - a, 0)) for a, b in zip(bounds[:-1], bounds[1:]))

    def unbind(self, dim=0):
        return tuple(self.select(dim, i) for i in range(self.shape[dim]))

    def flip(self, *dims):
        dims = dims[0] if len(dims) == 1 and not isinstance(dims[0], numbers.Integral) else dims
        idx = [slice(None)] * self.ndim
        for d in dims:
            idx[d % self.ndim] = slice(None, None, -1)
        return self[tuple(idx)]

    def fliplr(self):
        return self.flip(1)

    def flipud(self):
        return self.flip(0)

    def roll(self, shifts, dims=None):
        if dims is None:
            return self.flatten().roll(shifts, 0).reshape(self.shape)
        shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
        dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
        idx = [slice(None)] * self.ndim
        for s, d in zip(shifts, dims):
            n = self.shape[d]
            idx[d % self.ndim] = (np.arange(n) - s) % n
        out = self
        for d in range(self.ndim):  # one axis at a time: advanced indices on several axes would pair up
            if not isinstance(idx[d], slice):
                out = out.index_select(d, idx[d])
        return out

    def movedim(self, source, destination):
        src = (source,) if isinstance(source, numbers.Integral) else tuple(source)
        dst = (destination,) if isinstance(destination, numbers.Integral) else tuple(destination)
        nd = self.ndim
        src, dst = [s % nd for s in src], [d % nd for d in dst]
        rest = [d for d in range(nd) if d not in src]
        order = [None] * nd
        for s, d in zip(src, dst):
            order[d] = s
        it = iter(rest)
        order = [o if o is not None else next(it) for o in order]
        return self.permute(order)

    moveaxis = movedim

    # ---------------------------------------------------------------- sampling
    def multinomial(self, num_samples, replacement=False, *, generator=None):
        """Draw category indices with probabilities proportional to the (non-negative) rows."""
        p = np.asarray(self.data, dtype=np.float64)
        if p.ndim not in (1, 2):
            raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {p.ndim}")
        if (p < 0).any() or not np.isfinite(p).all():
            raise RuntimeError("multinomial: probability tensor contains either inf, nan or element < 0")
        rows = p.reshape(-1, p.shape[-1])
        gen = _random.numpy_generator(generator)
        out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
        for i, row in enumerate(rows):
            total = row.sum()
            if total <= 0:
                raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
            if not replacement and num_samples > np.count_nonzero(row):
                raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                                   "without replacement")
            out[i] = gen.choice(len(row), size=num_samples, replace=replacement, p=row / total)
        return _T()(out.reshape(p.shape[:-1] + (num_samples,)))

    def bernoulli(self, *, generator=None):
        gen = _random.numpy_generator(generator)
        return _T()((gen.random(self.shape) < self.data).astype(self.dtype))
