"""Reduction primitives: Sum and Max (mean, var, std, min are composed in tensor.py)."""
import numpy as np

from distbp.autograd import Function
from distbp.ops import primitive


def _expand_back(g, shape, axis, keepdims):
    """Reshape a reduced grad so it broadcasts against the input of `shape`."""
    if axis is None:
        return np.reshape(g, (1,) * len(shape))
    if not keepdims:
        g = np.expand_dims(g, axis)
    return g


@primitive
class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        g = _expand_back(g, ctx.shape, ctx.axis, ctx.keepdims)
        return np.broadcast_to(g, ctx.shape)  # read-only view: the engine copies if it keeps it


@primitive
class Max(Function):
    """amax over `axis`; the grad is split evenly between tied maxima (like torch.amax)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        out = a.max(axis=axis, keepdims=keepdims)
        ctx.a, ctx.out, ctx.axis, ctx.keepdims = a, out, axis, keepdims
        return out

    @staticmethod
    def backward(ctx, g):
        a = ctx.a
        out = _expand_back(ctx.out, a.shape, ctx.axis, ctx.keepdims)
        g = _expand_back(g, a.shape, ctx.axis, ctx.keepdims)
        mask = a == out
        count = mask.sum(axis=ctx.axis, keepdims=True)
        return mask * (g / count)
