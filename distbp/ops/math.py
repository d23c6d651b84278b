"""Math primitives beyond the arithmetic core: Sin, Cos (positional encodings, rotary embeddings)
and Cumsum (its backward is a reversed cumulative sum)."""
import numpy as np

from distbp.autograd import Function
from distbp.ops import primitive


@primitive
class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return np.sin(a)

    @staticmethod
    def backward(ctx, g):
        return g * np.cos(ctx.a)


@primitive
class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return np.cos(a)

    @staticmethod
    def backward(ctx, g):
        return -g * np.sin(ctx.a)


@primitive
class Cumsum(Function):
    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return np.cumsum(a, axis=axis)

    @staticmethod
    def backward(ctx, g):
        rev = np.flip(g, axis=ctx.axis)
        return np.flip(np.cumsum(rev, axis=ctx.axis), axis=ctx.axis)
