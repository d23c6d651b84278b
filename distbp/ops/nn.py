"""Neural-net primitives whose composed form would be slow or numerically poor:
log-softmax/softmax (stable), pooling via strided windows, batch/layer norm in closed form.
Pooling is 2-D; the 1-D versions in nn.functional reshape onto it. Convolution is in conv.py.
"""
import numpy as np

from distbp.autograd import Function
from distbp.ops import primitive
from distbp.ops.conv import _pad, _unpad


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


# ---------------------------------------------------------------- pooling

def pool_geometry(size, k, s, p, d, ceil_mode, what, shape):
    """torch's pooling_output_shape: (output length, extra padding needed at the end)."""
    if p > (d * (k - 1) + 1) // 2:
        raise ValueError(f"{what}: padding {p} should be at most half of the effective kernel "
                         f"size {d * (k - 1) + 1} (input shape {shape})")
    span = size + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1  # the last window would start in the right padding
    if o <= 0:
        raise ValueError(f"{what}: kernel {k} (dilation {d}) with padding {p} is larger than "
                         f"the input (input shape {shape})")
    return o, max(0, (o - 1) * s + d * (k - 1) + 1 - (size + 2 * p))


def _pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode, what):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    ho, eh = pool_geometry(x.shape[2], kh, sh, ph, dh, ceil_mode, what, x.shape)
    wo, ew = pool_geometry(x.shape[3], kw, sw, pw, dw, ceil_mode, what, x.shape)
    return ho, wo, ((ph, ph + eh), (pw, pw + ew))


def _offsets(kh, kw, sh, sw, ho, wo, dh=1, dw=1):
    """For each kernel offset (i, j): the strided slice of the padded input it touches."""
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(None), slice(None), slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
                         slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


@primitive
class MaxPool2d(Function):
    """Max over each (dilated) window, padding -inf; ties send the grad to the first maximum, like
    torch. kh*kw elementwise maxima over strided slices: no window copy. Given a list as
    `indices_out`, the flat index (row * W + col) of each maximum in its input plane (int64, the
    output's shape) is appended to it (F.max_pool2d(return_indices=True))."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation=(1, 1), ceil_mode=False,
                indices_out=None):
        return_indices = indices_out is not None
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        ho, wo, pads = _pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
        xp = _pad(x, pads, -np.inf)
        out = idx = None
        rows = np.arange(ho) * sh - padding[0]
        cols = np.arange(wo) * sw - padding[1]
        for i, j, sl in _offsets(kh, kw, sh, sw, ho, wo, dh, dw):
            v = xp[sl]
            if out is None:
                out = v.copy()
                if return_indices:
                    idx = np.broadcast_to((rows[:, None] + i * dh) * x.shape[3] + cols + j * dw,
                                          out.shape).copy()
            elif return_indices:
                better = (v > out) | np.isnan(v)
                np.copyto(idx, (rows[:, None] + i * dh) * x.shape[3] + cols + j * dw, where=better)
                np.copyto(out, v, where=better)
            else:
                np.maximum(out, v, out=out)
        ctx.xp, ctx.out, ctx.pads = xp, out, pads
        ctx.geom = (kh, kw, sh, sw, ho, wo, dh, dw)
        if return_indices:
            indices_out.append(idx)
        return out

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ho, wo, dh, dw = ctx.geom
        xp, out = ctx.xp, ctx.out
        gxp = np.zeros_like(xp, dtype=g.dtype)  # same memory layout as the input (channels-last)
        free = np.ones(out.shape, dtype=bool)  # windows whose max has not been credited yet
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo, dh, dw):
            hit = (xp[sl] == out) & free
            free &= ~hit
            gxp[sl] += g * hit
        return _unpad(gxp, ctx.pads)


def _avg_divisor(size, k, s, p, o, count_include_pad):
    """Per output position along one dim: how many elements torch divides that window's sum by."""
    start = np.arange(o) * s - p
    end = np.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


@primitive
class AvgPool2d(Function):
    """Average over each window: torch's ceil_mode, count_include_pad and divisor_override."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        ho, wo, pads = _pool_setup(x, kernel_size, stride, padding, (1, 1), ceil_mode, "avg_pool2d")
        xp = _pad(x, pads)
        out = None
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo):
            out = xp[sl].copy() if out is None else np.add(out, xp[sl], out=out)
        if divisor_override:
            scale = np.asarray(1.0 / divisor_override, dtype=x.dtype)
        else:
            div = np.outer(_avg_divisor(x.shape[2], kh, sh, ph, ho, count_include_pad),
                           _avg_divisor(x.shape[3], kw, sw, pw, wo, count_include_pad))
            scale = (1.0 / div).astype(x.dtype)
            if (div == div.flat[0]).all():
                scale = scale.flat[0]  # the common case: one divisor, a scalar multiply
        out *= scale
        ctx.pshape, ctx.pads, ctx.scale = xp.shape, pads, scale
        ctx.geom = (kh, kw, sh, sw, ho, wo)
        return out

    @staticmethod
    def backward(ctx, g):
        kh, kw, sh, sw, ho, wo = ctx.geom
        gxp = np.zeros(ctx.pshape, dtype=g.dtype)
        share = g * ctx.scale
        for _, _, sl in _offsets(kh, kw, sh, sw, ho, wo):
            gxp[sl] += share
        return _unpad(gxp, ctx.pads)


# ---------------------------------------------------------------- normalisation

def _rows(x):
    """(N, C, *) -> (M, C) with M = N * prod(*): a view when x is channels-last in memory
    (conv outputs are), so per-channel sums are one GEMV and broadcasts run along rows."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unrows(a, shape):
    """(M, C) -> the (N, C, *) view of it."""
    return np.moveaxis(a.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


def _by_channel(ufunc, a, v, out=None):
    """ufunc(a, v) for a (M, C) row matrix and a per-channel (C,) vector. numpy broadcasts a short
    row slowly (an inner loop of C elements per row: ~2x the time for C = 32), so a contiguous `a`
    is viewed as (M/k, k*C) against v tiled k times: the same elements, rows of ~1024."""
    m, c = a.shape
    k = max(1, 1024 // c)
    while m % k:
        k //= 2
    if k > 1 and a.flags.c_contiguous and (out is None or out is a):
        wide = a.reshape(m // k, k * c)
        res = ufunc(wide, np.tile(v, k), out=wide if out is a else None)
        return res.reshape(m, c)
    return ufunc(a, v, out=out)


@primitive
class BatchNorm(Function):
    """Batch norm over (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), statistics per channel.

    Computed on the (M, C) row matrix of the input (see _rows): sums are GEMVs with a ones vector.
    `allreduce` (None or a callable summing a numpy array in place across replicas and returning
    it) turns this into sync batch-norm: forward all-reduces [sum, sum of squares, count] once,
    backward all-reduces [sum(dy), sum(dy * xhat)] once, so statistics are over the global batch.
    Those sums are taken around a shift (the running mean, identical on every replica) to keep
    E[x^2] - E[x]^2 from cancelling; without allreduce the variance is the two-pass one.
    weight/bias grads stay local sums (the reducer averages them).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training=False, momentum=0.1,
                eps=1e-5, allreduce=None):
        if x.ndim < 2:
            raise ValueError(f"batch_norm: expected input (N, C, ...) got shape {x.shape}")
        c = x.shape[1]
        for name, p in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
            if p is not None and np.shape(p) != (c,):
                raise ValueError(f"batch_norm: {name} of shape {np.shape(p)} does not match "
                                 f"{c} channels of input {x.shape}")
        x2 = _rows(x)
        ones = np.ones(x2.shape[0], dtype=x.dtype)
        m = None
        if training:
            if allreduce is None:
                m = x2.shape[0]
                if m <= 1 and running_var is not None:
                    raise ValueError(f"batch_norm: training needs more than 1 value per channel, "
                                     f"got input shape {x.shape}")
                mean = (ones @ x2) / m
                xc = _by_channel(np.subtract, x2, mean)
                var = (ones @ (xc * xc)) / m
            else:
                shift = running_mean if running_mean is not None else np.zeros(c, x.dtype)
                xs = _by_channel(np.subtract, x2, shift.astype(x.dtype, copy=False))
                stats = np.concatenate([ones @ xs, ones @ (xs * xs),
                                        [x2.shape[0]]]).astype(x.dtype)
                stats = allreduce(stats)
                m = stats[-1]
                if m <= 1 and running_var is not None:
                    raise ValueError(f"batch_norm: training needs more than 1 value per channel, "
                                     f"got input shape {x.shape}")
                dmean = stats[:c] / m
                var = np.maximum(stats[c:2 * c] / m - dmean * dmean, 0)
                mean = shift + dmean
                xc = _by_channel(np.subtract, xs, dmean.astype(x.dtype, copy=False), out=xs)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (m / (m - 1))
        else:
            mean, var = running_mean, running_var
            xc = _by_channel(np.subtract, x2, np.asarray(mean, x.dtype))
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat = _by_channel(np.multiply, xc, invstd, out=xc)
        ctx.xhat, ctx.invstd, ctx.weight, ctx.m, ctx.ones = xhat, invstd, weight, m, ones
        ctx.allreduce, ctx.training, ctx.shape = allreduce, training, x.shape
        out = _by_channel(np.multiply, xhat, weight) if weight is not None else xhat.copy()
        if bias is not None:
            out = _by_channel(np.add, out, bias, out=out)
        return _unrows(out, x.shape)

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, w, ones = ctx.xhat, ctx.invstd, ctx.weight, ctx.ones
        need = ctx.needs_input_grad
        c = invstd.shape[0]
        g2 = _rows(g)
        sum_dy = ones @ g2
        sum_dy_xhat = ones @ (g2 * xhat)
        gw = sum_dy_xhat if need[1] else None
        gb = sum_dy if need[2] else None
        scale = invstd if w is None else invstd * w
        if not ctx.training:
            return _unrows(_by_channel(np.multiply, g2, scale), ctx.shape), gw, gb
        sums = np.concatenate([sum_dy, sum_dy_xhat])
        if ctx.allreduce is not None:  # called even if x needs no grad: every replica must join
            sums = ctx.allreduce(sums.copy())
        gx = None
        if need[0]:
            k = scale / ctx.m
            gx = _by_channel(np.multiply, g2, scale)
            gx = _by_channel(np.subtract, gx, k * sums[:c], out=gx)
            gx -= _by_channel(np.multiply, xhat, k * sums[c:])
            gx = _unrows(gx, ctx.shape)
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
