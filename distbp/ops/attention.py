"""Scaled dot-product attention as one primitive: one forward, one backward, no graph of its own.

    q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev)
    s = q k^T * scale (+ float mask | -inf where a bool mask is False | causal)   (..., L, S)
    p = softmax(s)  (rows with every key masked give p = 0, as torch does)
    out = dropout(p) v
Backward, with P = dropout(p):  dv = P^T g,  dP = g v^T,  dp = dP * keep / (1 - dropout_p),
ds = p * (dp - rowsum(dp * p)),  dq = ds k * scale,  dk = ds^T q * scale,  d(float mask) = ds.
Composing these from MatMul/Softmax/Mul nodes costs several extra (L, S) temporaries per head;
here the only saved (L, S) array is p (and the dropout mask when training).
With enable_gqa, k and v have fewer heads (dim -3) than q; each serves Hq/Hk query heads.
"""
import numpy as np

from distbp.autograd import Function, unbroadcast
from distbp.ops import primitive


def _repeat_heads(x, rep):
    return x if rep == 1 else np.repeat(x, rep, axis=-3)


def _sum_heads(g, rep):
    """Undo _repeat_heads: (..., Hk*rep, S, E) -> (..., Hk, S, E)."""
    if rep == 1:
        return g
    shape = g.shape
    return g.reshape(shape[:-3] + (shape[-3] // rep, rep) + shape[-2:]).sum(axis=-3)


@primitive
class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask=None, scale=1.0, is_causal=False, dropout_p=0.0, keep=None,
                gqa_rep=1):
        kk, vv = _repeat_heads(k, gqa_rep), _repeat_heads(v, gqa_rep)
        s = np.matmul(q, np.swapaxes(kk, -1, -2))                   # (..., L, S)
        s *= np.asarray(scale, dtype=s.dtype)
        L, S = s.shape[-2:]
        allowed = None
        if is_causal:
            allowed = np.tril(np.ones((L, S), dtype=bool))
        if mask is not None and mask.dtype == np.bool_:
            allowed = mask if allowed is None else (allowed & mask)
        elif mask is not None:
            s = s + mask
        if allowed is not None:
            s = np.where(allowed, s, -np.inf)
        m = s.max(axis=-1, keepdims=True)
        dead = ~np.isfinite(m)                                       # rows with every key masked
        if dead.any():
            m = np.where(dead, 0, m)
        p = np.exp(s - m, out=s if s.flags.writeable else None)
        total = p.sum(axis=-1, keepdims=True)
        if dead.any():
            total = np.where(dead, 1, total)
        p /= total
        pd = p
        if keep is not None:                                        # dropout: keep mask (..., L, S)
            pd = p * keep * np.asarray(1 / (1 - dropout_p), dtype=p.dtype)
        out = np.matmul(pd, vv)
        ctx.q, ctx.k, ctx.v, ctx.p, ctx.pd = q, kk, vv, p, pd
        ctx.keep, ctx.dropout_p, ctx.scale, ctx.rep = keep, dropout_p, scale, gqa_rep
        ctx.mshape = None if mask is None else mask.shape
        ctx.shapes = (q.shape, k.shape, v.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, p, pd = ctx.q, ctx.k, ctx.v, ctx.p, ctx.pd
        need = ctx.needs_input_grad
        scale = np.asarray(ctx.scale, dtype=g.dtype)
        gv = np.matmul(np.swapaxes(pd, -1, -2), g) if need[2] else None
        dp = np.matmul(g, np.swapaxes(v, -1, -2))                   # (..., L, S)
        if ctx.keep is not None:
            dp *= ctx.keep * np.asarray(1 / (1 - ctx.dropout_p), dtype=dp.dtype)
        ds = dp
        ds -= (dp * p).sum(axis=-1, keepdims=True)
        ds *= p
        rep, shapes = ctx.rep, ctx.shapes
        gq = unbroadcast(np.matmul(ds, k) * scale, shapes[0]) if need[0] else None
        if need[1]:
            gk = unbroadcast(_sum_heads(np.matmul(np.swapaxes(ds, -1, -2), q) * scale, rep), shapes[1])
        else:
            gk = None
        gv = unbroadcast(_sum_heads(gv, rep), shapes[2]) if need[2] else None
        gm = unbroadcast(ds, ctx.mshape) if len(need) > 3 and need[3] else None
        return gq, gk, gv, gm
