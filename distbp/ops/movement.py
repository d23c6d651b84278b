"""Shape and indexing primitives: Reshape, Permute, Expand, GetItem, Cat."""
import numpy as np

from distbp.autograd import Function, unbroadcast
from distbp.ops import primitive


@primitive
class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


@primitive
class Permute(Function):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(np.argsort(ctx.axes))


@primitive
class Expand(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {a.shape} to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


def _is_basic(index):
    """True for indices made only of ints/slices/None/Ellipsis: no element is picked twice."""
    items = index if type(index) is tuple else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in items)


@primitive
class GetItem(Function):
    """a[index]; repeated integer indices accumulate their grads (np.add.at)."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as e:
            raise IndexError(f"index {index!r} is invalid for a tensor of shape {a.shape}: {e}") from None

    @staticmethod
    def backward(ctx, g):
        out = np.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] = g
        else:
            np.add.at(out, ctx.index, g)
        return out


@primitive
class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"cat: shapes {shapes} do not match except in dim {axis}") from None

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.splits, axis=ctx.axis))
