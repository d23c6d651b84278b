"""Neural-net primitives whose composed form would be slow or numerically poor:
log-softmax/softmax (stable), conv via im2col, pooling via strided windows, batch/layer norm in
closed form. Conv and pooling are 2-D; the 1-D versions in nn.functional reshape onto them.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from distbp.autograd import Function
from distbp.ops import primitive


# ---------------------------------------------------------------- softmax family

@primitive
class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, axis=-1):
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, g):
        return g - np.exp(ctx.out) * g.sum(axis=ctx.axis, keepdims=True)


@primitive
class Softmax(Function):
    @staticmethod
    def forward(ctx, a, axis=-1):
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.out
        return out * (g - (g * out).sum(axis=ctx.axis, keepdims=True))


# ---------------------------------------------------------------- windows (conv, pooling)

def _windows(x, kh, kw, sh, sw):
    """Strided view (N, C, Ho, Wo, kh, kw) of every kernel window of x (N, C, H, W); no copy."""
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s0, s1, s2, s3 = x.strides
    return as_strided(x, (n, c, ho, wo, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2, s3), writeable=False)


def _pad(x, ph, pw, value=0.0):
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _scatter_windows(gwin, xshape, kh, kw, sh, sw, ph, pw, dtype):
    """Adjoint of _windows: add gwin (N, C, Ho, Wo, kh, kw) back into an (N, C, H, W) array.
    One vectorised add per kernel offset (kh*kw of them), never a loop over pixels."""
    n, c, h, w = xshape
    ho, wo = gwin.shape[2], gwin.shape[3]
    gx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += gwin[:, :, :, :, i, j]
    return gx[:, :, ph:ph + h, pw:pw + w] if (ph or pw) else gx


def _out_size(size, k, s, p, what, xshape):
    o = (size + 2 * p - k) // s + 1
    if o <= 0:
        raise ValueError(f"{what}: kernel {k} with padding {p} is larger than the input "
                         f"(input shape {xshape})")
    return o


@primitive
class Conv2d(Function):
    """x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None -> (N, O, Ho, Wo).

    im2col: the windows view is copied once into a (N*Ho*Wo, C*kh*kw) matrix and multiplied by
    the weight in one GEMM; backward is two GEMMs plus a kh*kw-step col2im.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
        if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
            raise ValueError(f"conv2d: input of shape {x.shape} does not match weight of shape "
                             f"{weight.shape} (expected input (N, {weight.shape[1]}, H, W))")
        (sh, sw), (ph, pw) = stride, padding
        o, c, kh, kw = weight.shape
        _out_size(x.shape[2], kh, sh, ph, "conv2d", x.shape)
        _out_size(x.shape[3], kw, sw, pw, "conv2d", x.shape)
        win = _windows(_pad(x, ph, pw), kh, kw, sh, sw)            # (N, C, Ho, Wo, kh, kw)
        n, _, ho, wo = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
        w2 = weight.reshape(o, c * kh * kw)
        out = cols @ w2.T                                           # (N*Ho*Wo, O)
        if bias is not None:
            out += bias
        ctx.cols, ctx.weight, ctx.xshape = cols, weight, x.shape
        ctx.geom = (kh, kw, sh, sw, ph, pw, ho, wo)
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ph, pw, ho, wo = ctx.geom
        w = ctx.weight
        o, c = w.shape[:2]
        n = ctx.xshape[0]
        need = ctx.needs_input_grad
        g2 = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)       # (N*Ho*Wo, O)
        gx = gw = gb = None
        if need[1]:
            gw = (g2.T @ ctx.cols).reshape(w.shape)
        if len(need) > 2 and need[2]:
            gb = g2.sum(0)
        if need[0]:
            gcols = (g2 @ w.reshape(o, -1)).reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
            gx = _scatter_windows(gcols, ctx.xshape, kh, kw, sh, sw, ph, pw, g.dtype)
        return gx, gw, gb


@primitive
class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        _out_size(x.shape[2], kh, sh, ph, "max_pool2d", x.shape)
        _out_size(x.shape[3], kw, sw, pw, "max_pool2d", x.shape)
        win = _windows(_pad(x, ph, pw, -np.inf), kh, kw, sh, sw)
        n, c, ho, wo = win.shape[:4]
        flat = win.reshape(n, c, ho, wo, kh * kw)
        arg = flat.argmax(axis=-1)
        ctx.arg, ctx.xshape, ctx.geom = arg, x.shape, (kh, kw, sh, sw, ph, pw)
        return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ph, pw = ctx.geom
        onehot = ctx.arg[..., None] == np.arange(kh * kw)          # (N, C, Ho, Wo, kh*kw)
        gwin = (onehot * g[..., None]).reshape(*g.shape, kh, kw)
        return _scatter_windows(gwin, ctx.xshape, kh, kw, sh, sw, ph, pw, g.dtype)


@primitive
class AvgPool2d(Function):
    """Average over each window, zero padding counted (torch's count_include_pad=True)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        _out_size(x.shape[2], kh, sh, ph, "avg_pool2d", x.shape)
        _out_size(x.shape[3], kw, sw, pw, "avg_pool2d", x.shape)
        win = _windows(_pad(x, ph, pw), kh, kw, sh, sw)
        ctx.xshape, ctx.geom = x.shape, (kh, kw, sh, sw, ph, pw)
        return win.mean(axis=(4, 5))

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ph, pw = ctx.geom
        gwin = np.broadcast_to((g / (kh * kw))[..., None, None], (*g.shape, kh, kw))
        return _scatter_windows(gwin, ctx.xshape, kh, kw, sh, sw, ph, pw, g.dtype)


# ---------------------------------------------------------------- normalisation

@primitive
class BatchNorm(Function):
    """Batch norm over (N, C), (N, C, L) or (N, C, H, W), statistics per channel C.

    `allreduce` (None or a callable summing a numpy array in place across replicas and returning
    it) turns this into sync batch-norm: forward all-reduces [sum, sum of squares, count] once,
    backward all-reduces [sum(dy), sum(dy * xhat)] once, so statistics are over the global batch.
    The sums are taken around a shift (the running mean, identical on every replica) to keep
    E[x^2] - E[x]^2 from cancelling. weight/bias grads stay local sums (the reducer averages them).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training=False, momentum=0.1,
                eps=1e-5, allreduce=None):
        if x.ndim < 2:
            raise ValueError(f"batch_norm: expected input (N, C, ...) got shape {x.shape}")
        c = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, c) + (1,) * (x.ndim - 2)                      # broadcasts per channel
        for name, p in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
            if p is not None and np.shape(p) != (c,):
                raise ValueError(f"batch_norm: {name} of shape {np.shape(p)} does not match "
                                 f"{c} channels of input {x.shape}")
        if training:
            shift = (running_mean if running_mean is not None else np.zeros(c, x.dtype)).reshape(bshape)
            xs = x - shift
            count = x.size // c
            stats = np.concatenate([xs.sum(axes), (xs * xs).sum(axes), [count]]).astype(x.dtype)
            if allreduce is not None:
                stats = allreduce(stats)
            m = stats[-1]
            if m <= 1 and running_var is not None:
                raise ValueError(f"batch_norm: training needs more than 1 value per channel, "
                                 f"got input shape {x.shape}")
            dmean = stats[:c] / m
            var = np.maximum(stats[c:2 * c] / m - dmean * dmean, 0)
            mean = shift.reshape(c) + dmean
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (m / (m - 1))
        else:
            mean, var, m = running_mean, running_var, None
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat = (x - mean.reshape(bshape)) * invstd.reshape(bshape)
        ctx.xhat, ctx.invstd, ctx.weight, ctx.m = xhat, invstd, weight, m
        ctx.axes, ctx.bshape, ctx.allreduce, ctx.training = axes, bshape, allreduce, training
        out = xhat * weight.reshape(bshape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(bshape)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, w, axes, bshape = ctx.xhat, ctx.invstd, ctx.weight, ctx.axes, ctx.bshape
        need = ctx.needs_input_grad
        c = invstd.shape[0]
        sum_dy = g.sum(axes)
        sum_dy_xhat = (g * xhat).sum(axes)
        gw = sum_dy_xhat if need[1] else None
        gb = sum_dy if need[2] else None
        scale = invstd if w is None else invstd * w
        if not ctx.training:
            gx = g * scale.reshape(bshape)
            return gx, gw, gb
        sums = np.concatenate([sum_dy, sum_dy_xhat])
        if ctx.allreduce is not None:  # called even if x needs no grad: every replica must join
            sums = ctx.allreduce(sums.copy())
        gsum, gsum_xhat = sums[:c].reshape(bshape), sums[c:].reshape(bshape)
        gx = None
        if need[0]:
            gx = (scale / ctx.m).reshape(bshape) * (ctx.m * g - gsum - xhat * gsum_xhat)
        return gx, gw, gb


@primitive
class LayerNorm(Function):
    """Normalise over the last `ndim` axes; weight/bias (optional) have those axes' shape."""

    @staticmethod
    def forward(ctx, x, weight, bias, ndim=1, eps=1e-5):
        axes = tuple(range(x.ndim - ndim, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=axes, keepdims=True)
        invstd = 1.0 / np.sqrt(var + eps)
        xhat = xc * invstd
        ctx.xhat, ctx.invstd, ctx.weight, ctx.axes = xhat, invstd, weight, axes
        out = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, w, axes = ctx.xhat, ctx.invstd, ctx.weight, ctx.axes
        need = ctx.needs_input_grad
        lead = tuple(range(g.ndim - len(axes)))
        gw = (g * xhat).sum(axis=lead) if need[1] else None
        gb = g.sum(axis=lead) if need[2] else None
        gx = None
        if need[0]:
            gxhat = g * w if w is not None else g
            gx = invstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                           - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
        return gx, gw, gb
