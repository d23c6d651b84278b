"""Matrix primitives: MatMul (numpy matmul semantics incl. 1-D and batched) and Linear."""
import numpy as np

from distbp.autograd import Function, unbroadcast
from distbp.ops import primitive


def _matmul_error(a, b, what="matmul"):
    return ValueError(f"{what}: cannot multiply shapes {a.shape} and {b.shape} "
                      f"(inner dims {a.shape[-1] if a.ndim else '-'} vs "
                      f"{(b.shape[-2] if b.ndim > 1 else b.shape[0]) if b.ndim else '-'})")


@primitive
class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        try:
            return np.matmul(a, b)
        except ValueError:
            raise _matmul_error(a, b) from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        n = ctx.needs_input_grad
        # promote 1-D operands to matrices like numpy does, then drop the added dims again
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:
            g2 = np.reshape(g, (1, 1))
        elif a.ndim == 1:
            g2 = g[..., None, :]
        elif b.ndim == 1:
            g2 = g[..., None]
        else:
            g2 = g
        ga = gb = None
        if n[0]:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if n[1]:
            if b2.ndim == 2 and a2.ndim > 2:  # (..., n, k) @ (k, m): one big GEMM, no batch sum
                gb = a2.reshape(-1, a2.shape[-1]).T @ g2.reshape(-1, g2.shape[-1])
            else:
                gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


@primitive
class Linear(Function):
    """y = x @ weight.T + bias, x (..., in), weight (out, in), bias (out,) or None.

    Leading dims are flattened so every product is one 2-D GEMM (numpy's matmul on a 3-D
    operand loops over the batch with small GEMMs, ~1.5x slower at transformer sizes)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.shape[-1:] != weight.shape[1:] or weight.ndim != 2:
            raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape "
                             f"{weight.shape} (expected input (..., {weight.shape[-1]}))")
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        ctx.x2, ctx.weight, ctx.xshape = x2, weight, x.shape
        out = x2 @ weight.T
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],)) if x.ndim != 2 else out

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.x2, ctx.weight
        n = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        gx = (g2 @ w).reshape(ctx.xshape) if n[0] else None
        gw = (g2.T @ x2) if n[1] else None
        gb = g2.sum(0) if len(n) > 2 and n[2] else None
        return gx, gw, gb
