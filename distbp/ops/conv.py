"""Convolution primitives via im2col: Conv2d, ConvTranspose2d, Im2Col (F.unfold), Col2Im (F.fold).

Geometry shared by all four: stride (sh, sw), padding ((top, bottom), (left, right)) -- asymmetric
so padding="same" with an even kernel pads like torch (the extra row/column at the end) --,
dilation (dh, dw) and groups G. A conv's input-gradient is a transposed conv's forward and the
other way round, so the three helpers below (windows -> cols, cols -> output, grad -> image) serve
every op:
    _cols(xp)            (N, C, Hp, Wp) padded image -> (G, C/G*kh*kw, N*Ho*Wo) patch matrix
    _col2im(gcols)       (N, Ho, Wo, C, kh, kw) patch grads -> (N, C, Hp, Wp) summed image
The GEMMs put N*Ho*Wo on the rows (tall-skinny products are OpenBLAS's fast ones), which leaves a
conv's output channels-last in memory; elementwise ops downstream do not care.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from distbp.autograd import Function
from distbp.ops import primitive


def _pad(x, padding, value=0.0):
    """x (N, C, H, W) -> padded by ((top, bottom), (left, right)) filled with `value`."""
    (pt, pb), (pl, pr) = padding
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    out = np.empty((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    out[:, :, :pt] = value
    out[:, :, h + pt:] = value
    out[:, :, :, :pl] = value
    out[:, :, :, w + pl:] = value
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _unpad(xp, padding):
    (pt, pb), (pl, pr) = padding
    return xp[:, :, pt:xp.shape[2] - pb, pl:xp.shape[3] - pr]


def out_size(size, k, stride, pad_total, dilation, what, shape):
    """Output length of a window op along one dim (floor mode); raises if no window fits."""
    o = (size + pad_total - dilation * (k - 1) - 1) // stride + 1
    if o <= 0:
        raise ValueError(f"{what}: kernel {k} (dilation {dilation}) with padding {pad_total} is "
                         f"larger than the padded input (input shape {shape})")
    return o


def _cols(xp, kh, kw, stride, dilation, groups, ho, wo):
    """Patch matrix (G, C/G*kh*kw, N*Ho*Wo) of the padded image xp (one copy of the windows)."""
    n, c = xp.shape[:2]
    (sh, sw), (dh, dw) = stride, dilation
    s0, s1, s2, s3 = xp.strides
    win = as_strided(xp, (n, c, ho, wo, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2 * dh, s3 * dw),
                     writeable=False)
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(groups, c // groups * kh * kw, n * ho * wo)


def _col2im(gcols, pshape, stride, dilation):
    """Sum the patch grads gcols (N, Ho, Wo, C, kh, kw) back into a padded image of pshape
    (N, C, Hp, Wp): kh*kw vectorised strided adds, accumulated channels-last."""
    n, ho, wo, c, kh, kw = gcols.shape
    (sh, sw), (dh, dw) = stride, dilation
    gxp = np.zeros((n, pshape[2], pshape[3], c), dtype=gcols.dtype)
    for i in range(kh):
        for j in range(kw):
            gxp[:, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw] += \
                gcols[..., i, j]
    return gxp.transpose(0, 3, 1, 2)


def _grouped(a, groups):
    """(M, G*k) -> (G, M, k): split the channel axis of a channels-last matrix into groups."""
    m = a.shape[0]
    return a.reshape(m, groups, -1).transpose(1, 0, 2)


def _ungrouped(a):
    """(G, M, k) -> (M, G*k)."""
    g, m, k = a.shape
    return a.transpose(1, 0, 2).reshape(m, g * k)


def _apply_weight(cols, weight, groups):
    """cols (G, Ck, M), weight (O, C/G, kh, kw) -> (M, O) = per group cols.T @ W_g.T."""
    o = weight.shape[0]
    w = weight.reshape(groups, o // groups, -1)
    if groups == 1:
        return cols[0].T @ w[0].T
    return _ungrouped(np.matmul(cols.transpose(0, 2, 1), w.transpose(0, 2, 1)))


def _weight_grad(cols, g2, wshape, groups):
    """d(out)/d(weight): cols (G, Ck, M), g2 (M, O) -> (O, C/G, kh, kw)."""
    if groups == 1:
        return (cols[0] @ g2).T.reshape(wshape)
    return np.matmul(cols, _grouped(g2, groups)).transpose(0, 2, 1).reshape(wshape)


def _patch_grads(g2, weight, groups, n, ho, wo):
    """d(out)/d(cols) as (N, Ho, Wo, C, kh, kw) from g2 (M, O) and weight (O, C/G, kh, kw)."""
    o, cg, kh, kw = weight.shape
    w = weight.reshape(groups, o // groups, -1)
    if groups == 1:
        gc = g2 @ w[0]
    else:
        gc = _ungrouped(np.matmul(_grouped(g2, groups), w))
    return gc.reshape(n, ho, wo, groups * cg, kh, kw)


def _channels_last(g):
    """(N, C, H, W) -> (N*H*W, C); a view when g is channels-last in memory (our conv outputs)."""
    n, c, h, w = g.shape
    return g.transpose(0, 2, 3, 1).reshape(n * h * w, c)


@primitive
class Conv2d(Function):
    """x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,) or None -> (N, O, Ho, Wo)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)),
                dilation=(1, 1), groups=1):
        o, cg, kh, kw = weight.shape
        if x.ndim != 4 or x.shape[1] != cg * groups or o % groups:
            raise ValueError(f"conv2d: input of shape {x.shape} does not match weight of shape "
                             f"{weight.shape} with groups={groups} (expected input "
                             f"(N, {cg * groups}, H, W) and out channels divisible by groups)")
        xp = _pad(x, padding)
        ho = out_size(x.shape[2], kh, stride[0], sum(padding[0]), dilation[0], "conv2d", x.shape)
        wo = out_size(x.shape[3], kw, stride[1], sum(padding[1]), dilation[1], "conv2d", x.shape)
        cols = _cols(xp, kh, kw, stride, dilation, groups, ho, wo)
        out = _apply_weight(cols, weight, groups)                   # (N*Ho*Wo, O)
        if bias is not None:
            out += bias
        ctx.cols, ctx.weight, ctx.pshape = cols, weight, xp.shape
        ctx.geom = (stride, padding, dilation, groups)
        n = x.shape[0]
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        stride, padding, dilation, groups = ctx.geom
        need = ctx.needs_input_grad
        n, _, ho, wo = g.shape
        g2 = _channels_last(g)
        gx = gw = gb = None
        if need[1]:
            gw = _weight_grad(ctx.cols, g2, ctx.weight.shape, groups)
        if len(need) > 2 and need[2]:
            gb = g2.sum(0)
        if need[0]:
            gcols = _patch_grads(g2, ctx.weight, groups, n, ho, wo)
            gx = _unpad(_col2im(gcols, ctx.pshape, stride, dilation), padding)
        return gx, gw, gb


@primitive
class ConvTranspose2d(Function):
    """x (N, Cin, H, W), weight (Cin, Cout/G, kh, kw), bias (Cout,) -> (N, Cout, Ho, Wo) with
    Ho = (H - 1) * sh - (top + bottom) + dh * (kh - 1) + output_padding + 1: the input-gradient
    of a Conv2d whose weight is `weight` and whose output is x."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)),
                output_padding=(0, 0), dilation=(1, 1), groups=1):
        cin, cog, kh, kw = weight.shape
        if x.ndim != 4 or x.shape[1] != cin or cin % groups:
            raise ValueError(f"conv_transpose2d: input of shape {x.shape} does not match weight "
                             f"of shape {weight.shape} with groups={groups} (expected input "
                             f"(N, {cin}, H, W))")
        n, _, h, w = x.shape
        hp = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
        wp = (w - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
        if hp - sum(padding[0]) <= 0 or wp - sum(padding[1]) <= 0:
            raise ValueError(f"conv_transpose2d: padding {padding} leaves no output for input "
                             f"shape {x.shape} and kernel {(kh, kw)}")
        x2 = _channels_last(x)
        gcols = _patch_grads(x2, weight, groups, n, h, w)          # (N, H, W, Cout, kh, kw)
        out = _unpad(_col2im(gcols, (n, cog * groups, hp, wp), stride, dilation), padding)
        if bias is not None:
            out = out + bias.reshape(1, -1, 1, 1)
        ctx.x2, ctx.weight, ctx.xshape = x2, weight, x.shape
        ctx.geom = (stride, padding, dilation, groups)
        return out

    @staticmethod
    def backward(ctx, g):
        stride, padding, dilation, groups = ctx.geom
        need = ctx.needs_input_grad
        n, _, h, w = ctx.xshape
        kh, kw = ctx.weight.shape[2:]
        gp = _pad(np.ascontiguousarray(g), padding)
        gcols = _cols(gp, kh, kw, stride, dilation, groups, h, w)  # (G, Cout/G*kh*kw, N*H*W)
        gx = gw = gb = None
        if need[0]:
            gx = _apply_weight(gcols, ctx.weight, groups).reshape(n, h, w, -1).transpose(0, 3, 1, 2)
        if need[1]:
            gw = _weight_grad(gcols, ctx.x2, ctx.weight.shape, groups)
        if len(need) > 2 and need[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


@primitive
class Im2Col(Function):
    """F.unfold: x (N, C, H, W) -> (N, C*kh*kw, L) sliding blocks, L = Ho*Wo (torch's order)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation):
        kh, kw = kernel_size
        xp = _pad(x, padding)
        ho = out_size(x.shape[2], kh, stride[0], sum(padding[0]), dilation[0], "unfold", x.shape)
        wo = out_size(x.shape[3], kw, stride[1], sum(padding[1]), dilation[1], "unfold", x.shape)
        n, c = x.shape[:2]
        cols = _cols(xp, kh, kw, stride, dilation, 1, ho, wo)[0]   # (C*kh*kw, N*Ho*Wo)
        ctx.geom = (xp.shape, kernel_size, stride, padding, dilation, ho, wo)
        return cols.reshape(c * kh * kw, n, ho * wo).transpose(1, 0, 2)

    @staticmethod
    def backward(ctx, g):
        pshape, (kh, kw), stride, padding, dilation, ho, wo = ctx.geom
        n, c = pshape[:2]
        gcols = g.reshape(n, c, kh, kw, ho, wo).transpose(0, 4, 5, 1, 2, 3)
        return _unpad(_col2im(gcols, pshape, stride, dilation), padding)


@primitive
class Col2Im(Function):
    """F.fold: blocks (N, C*kh*kw, L) -> (N, C, H, W), overlapping entries summed."""

    @staticmethod
    def forward(ctx, cols, output_size, kernel_size, stride, padding, dilation):
        (kh, kw), (h, w) = kernel_size, output_size
        ho = out_size(h, kh, stride[0], sum(padding[0]), dilation[0], "fold", cols.shape)
        wo = out_size(w, kw, stride[1], sum(padding[1]), dilation[1], "fold", cols.shape)
        n, ckk, length = cols.shape
        if ckk % (kh * kw) or length != ho * wo:
            raise ValueError(f"fold: input of shape {cols.shape} does not match kernel {(kh, kw)} "
                             f"and output_size {(h, w)} (expected (N, C*{kh * kw}, {ho * wo}))")
        c = ckk // (kh * kw)
        pshape = (n, c, h + sum(padding[0]), w + sum(padding[1]))
        ctx.geom = (pshape, kernel_size, stride, padding, dilation, ho, wo)
        gcols = cols.reshape(n, c, kh, kw, ho, wo).transpose(0, 4, 5, 1, 2, 3)
        return _unpad(_col2im(gcols, pshape, stride, dilation), padding)

    @staticmethod
    def backward(ctx, g):
        pshape, (kh, kw), stride, padding, dilation, ho, wo = ctx.geom
        n, c = pshape[:2]
        cols = _cols(_pad(g, padding), kh, kw, stride, dilation, 1, ho, wo)[0]
        return cols.reshape(c * kh * kw, n, ho * wo).transpose(1, 0, 2)
