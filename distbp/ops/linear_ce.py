"""LinearCrossEntropy: cross_entropy(x @ weight.T + bias, target) without the (N, C) logits.

A primitive because composing would keep every logit for the backward: with a large vocabulary
(C >> in_features) those dominate memory. Here the rows are processed in chunks of `chunk`: the
forward keeps only each row's log-sum-exp, the backward recomputes a chunk's logits and turns them
into the chunk's gradient at once:
    z = x_c @ W.T + b                     (chunk, C), in acc_dtype
    loss_r = w_{t_r} * (lse_r - z_{r, t_r})   (w: class weights, 0 for ignore_index rows)
    dz = s_r * (softmax(z)_r - onehot(t_r))   s_r: the row's scale from reduction and grad_output
    dx_c = dz @ W,  dW += dz.T @ x_c,  db += dz.sum(0)
Class-index targets only; reductions 'mean' (weighted mean over non-ignored rows, as torch's
cross_entropy), 'sum', 'none' (N,).
"""
import numpy as np

from distbp.autograd import Function
from distbp.ops import primitive


def _logits(x, weight, bias, acc):
    z = x.astype(acc, copy=False) @ weight.astype(acc, copy=False).T
    if bias is not None:
        z += bias.astype(acc, copy=False)
    return z


def _row_weights(target, class_weight, ignore_index, dtype):
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    w = np.ones(len(target), dtype=dtype) if class_weight is None else \
        np.asarray(class_weight, dtype=dtype)[safe]
    return safe, np.where(valid, w, 0).astype(dtype)


@primitive
class LinearCrossEntropy(Function):
    """x (N, in), weight (C, in), bias (C,) or None; target (N,) int -> loss (scalar or (N,))."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, target, class_weight=None, ignore_index=-100,
                reduction="mean", chunk=None, acc_dtype=None):
        n, c = x.shape[0], weight.shape[0]
        target = np.asarray(target, dtype=np.int64)
        bad = (target != ignore_index) & ((target < 0) | (target >= c))
        if bad.any():
            raise ValueError(f"linear_cross_entropy: target {target[bad][0]} is out of bounds for "
                             f"{c} classes")
        acc = np.dtype(acc_dtype or x.dtype)
        chunk = max(1, min(int(chunk or n), n)) if n else 1
        safe, rw = _row_weights(target, class_weight, ignore_index, acc)
        lse = np.empty(n, dtype=acc)
        loss = np.empty(n, dtype=acc)
        rows = np.arange(chunk)
        for i in range(0, n, chunk):
            z = _logits(x[i:i + chunk], weight, bias, acc)
            m = z.max(1)
            lse[i:i + chunk] = m + np.log(np.exp(z - m[:, None]).sum(1))
            k = len(z)
            loss[i:i + chunk] = (lse[i:i + chunk] - z[rows[:k], safe[i:i + chunk]]) * rw[i:i + chunk]
        ctx.saved = (x, weight, bias, safe, rw, lse, chunk, acc, reduction)
        if reduction == "none":
            return loss.astype(x.dtype)
        total = loss.sum()
        return np.asarray(total / rw.sum() if reduction == "mean" else total, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, weight, bias, safe, rw, lse, chunk, acc, reduction = ctx.saved
        need = ctx.needs_input_grad
        scale = rw * (np.asarray(g, dtype=acc) if reduction == "none" else acc.type(g))
        if reduction == "mean":
            scale = scale / rw.sum()
        gx = np.empty(x.shape, dtype=x.dtype) if need[0] else None
        gw = np.zeros(weight.shape, dtype=acc) if need[1] else None
        gb = np.zeros(weight.shape[0], dtype=acc) if len(need) > 2 and need[2] else None
        for i in range(0, x.shape[0], chunk):
            xc = x[i:i + chunk].astype(acc, copy=False)
            dz = np.exp(_logits(xc, weight, bias, acc) - lse[i:i + chunk, None])
            dz[np.arange(len(dz)), safe[i:i + chunk]] -= 1
            dz *= scale[i:i + chunk, None]
            if gx is not None:
                gx[i:i + chunk] = dz @ weight.astype(acc, copy=False)
            if gw is not None:
                gw += dz.T @ xc
            if gb is not None:
                gb += dz.sum(0)
        return (gx, None if gw is None else gw.astype(weight.dtype),
                None if gb is None else gb.astype(bias.dtype))
