"""ConstantPad: F.pad's constant mode as one primitive (allocate, fill, one copy; the grad is a
slice). Negative pads crop. Reflect/replicate/circular padding are composed from slices and Cat
in nn.functional."""
import numpy as np

from distbp.autograd import Function
from distbp.ops import primitive


@primitive
class ConstantPad(Function):
    """pads: one (before, after) pair per dim of x, leading dims first; value fills the border."""

    @staticmethod
    def forward(ctx, x, pads, value=0.0):
        crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(pads, x.shape))
        src = x[crop]
        shape = tuple(n + max(b, 0) + max(a, 0) for (b, a), n in zip(pads, src.shape))
        if any(n < 0 for n in shape) or any(s.start > s.stop for s in crop):
            raise ValueError(f"pad: pads {pads} crop more than the input of shape {x.shape} holds")
        out = np.full(shape, value, dtype=x.dtype)
        place = tuple(slice(max(b, 0), max(b, 0) + n) for (b, _), n in zip(pads, src.shape))
        out[place] = src
        ctx.crop, ctx.place, ctx.xshape = crop, place, x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        gx = np.zeros(ctx.xshape, dtype=g.dtype)
        gx[ctx.crop] = g[ctx.place]
        return gx
