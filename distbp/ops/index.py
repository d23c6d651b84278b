"""Indexed writes: SetItem (out = a with a[index] = v), the primitive under `Tensor.__setitem__`,
`masked_fill` and `index_put`-style in-place updates that take part in autograd."""
import numpy as np

from distbp.autograd import Function, unbroadcast
from distbp.ops import primitive
from distbp.ops.movement import _is_basic


@primitive
class SetItem(Function):
    """out = a.copy(); out[index] = v. Grad: a's is g with the written places zeroed, v's is g[index]
    (summed back to v's shape). Repeated advanced indices write the last value, as numpy and torch do;
    their grads are then ambiguous, so backward refuses them."""

    @staticmethod
    def forward(ctx, a, v, index):
        ctx.index, ctx.sv = index, np.shape(v)
        out = np.array(a, copy=True)
        try:
            out[index] = v
        except (IndexError, ValueError) as e:
            raise type(e)(f"setitem: cannot assign a value of shape {np.shape(v)} to index {index!r} "
                          f"of a tensor of shape {a.shape}: {e}") from None
        return out

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        ga = gv = None
        if n[0]:
            ga = np.array(g, copy=True)
            ga[ctx.index] = 0
        if n[1]:
            picked = g[ctx.index]
            if not _is_basic(ctx.index):
                marks = np.zeros(g.shape, dtype=np.int64)
                np.add.at(marks, ctx.index, 1)
                if (marks > 1).any():
                    raise RuntimeError("setitem: backward through an assignment with repeated "
                                       "indices is ambiguous (which write won?); use unique indices")
            gv = unbroadcast(np.asarray(picked), ctx.sv)
        return ga, gv
