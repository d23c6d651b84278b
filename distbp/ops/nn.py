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
    """x (N, C, H, W) -> (N, C, H + 2ph, W + 2pw), borders = value (np.pad costs ~40 us more a call)."""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.empty((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    out[:, :, :ph] = out[:, :, h + ph:] = value
    out[:, :, :, :pw] = out[:, :, :, w + pw:] = value
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _offsets(kh, kw, sh, sw, ho, wo):
    """For each kernel offset (i, j): the strided slice of the padded input it touches."""
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh),
                         slice(j, j + sw * (wo - 1) + 1, sw))


def _out_size(size, k, s, p, what, xshape):
    o = (size + 2 * p - k) // s + 1
    if o <= 0:
        raise ValueError(f"{what}: kernel {k} with padding {p} is larger than the input "
                         f"(input shape {xshape})")
    return o


def _unpad(gx, ph, pw):
    return gx[:, :, ph:gx.shape[2] - ph, pw:gx.shape[3] - pw] if (ph or pw) else gx


@primitive
class Conv2d(Function):
    """x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None -> (N, O, Ho, Wo).

    im2col: the windows view is copied once into cols (C*kh*kw, N*Ho*Wo) (this layout keeps the
    copy's inner loop contiguous); the GEMMs are oriented so N*Ho*Wo is the row count (tall-skinny
    products are the fast ones in OpenBLAS), which leaves the output channels-last in memory.
    Backward is two GEMMs plus col2im as kh*kw vectorised strided adds (no loop over pixels).
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
        cols = win.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)
        out = cols.T @ weight.reshape(o, c * kh * kw).T            # (N*Ho*Wo, O)
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
        n, _, h, wd = ctx.xshape
        need = ctx.needs_input_grad
        g2 = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)       # (N*Ho*Wo, O); a view if g is
        gx = gw = gb = None                                         # channels-last like our output
        if need[1]:
            gw = (ctx.cols @ g2).T.reshape(w.shape)
        if len(need) > 2 and need[2]:
            gb = g2.sum(0)
        if need[0]:
            gcols = (g2 @ w.reshape(o, -1)).reshape(n, ho, wo, c, kh, kw)
            gxp = np.zeros((n, h + 2 * ph, wd + 2 * pw, c), dtype=g.dtype)  # channels-last
            for i, j, _ in _offsets(kh, kw, sh, sw, ho, wo):
                gxp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += gcols[..., i, j]
            gx = _unpad(gxp.transpose(0, 3, 1, 2), ph, pw)
        return gx, gw, gb


@primitive
class MaxPool2d(Function):
    """Max over each window (padding is -inf); ties send the grad to the first maximum, like torch.
    Computed as kh*kw elementwise maxima over strided slices: no window copy."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        ho = _out_size(x.shape[2], kh, sh, ph, "max_pool2d", x.shape)
        wo = _out_size(x.shape[3], kw, sw, pw, "max_pool2d", x.shape)
        xp = _pad(x, ph, pw, -np.inf)
        out = None
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo):
            out = xp[sl].copy() if out is None else np.maximum(out, xp[sl], out=out)
        ctx.xp, ctx.out, ctx.geom = xp, out, (kh, kw, sh, sw, ph, pw, ho, wo)
        return out

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ph, pw, ho, wo = ctx.geom
        xp, out = ctx.xp, ctx.out
        gxp = np.zeros_like(xp, dtype=g.dtype)  # same memory layout as the input (channels-last)
        free = np.ones(out.shape, dtype=bool)  # windows whose max has not been credited yet
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo):
            hit = (xp[sl] == out) & free
            free &= ~hit
            gxp[sl] += g * hit
        return _unpad(gxp, ph, pw)


@primitive
class AvgPool2d(Function):
    """Average over each window, zero padding counted (torch's count_include_pad=True)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        ho = _out_size(x.shape[2], kh, sh, ph, "avg_pool2d", x.shape)
        wo = _out_size(x.shape[3], kw, sw, pw, "avg_pool2d", x.shape)
        xp = _pad(x, ph, pw)
        out = None
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo):
            out = xp[sl].copy() if out is None else np.add(out, xp[sl], out=out)
        ctx.pshape, ctx.geom = xp.shape, (kh, kw, sh, sw, ph, pw, ho, wo)
        out *= np.asarray(1.0 / (kh * kw), dtype=out.dtype)
        return out

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ph, pw, ho, wo = ctx.geom
        gxp = np.zeros(ctx.pshape, dtype=g.dtype)
        share = g * np.asarray(1.0 / (kh * kw), dtype=g.dtype)
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo):
            gxp[sl] += share
        return _unpad(gxp, ph, pw)


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
