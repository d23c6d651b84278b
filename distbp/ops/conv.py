"""Convolution primitives via im2col: Conv2d, ConvTranspose2d, Im2Col (F.unfold), Col2Im (F.fold).

Geometry shared by all four: stride (sh, sw), padding ((top, bottom), (left, right)) -- asymmetric
so padding="same" with an even kernel pads like torch (the extra row/column at the end) --,
dilation (dh, dw) and groups G. A conv's input-gradient is a transposed conv's forward and the
other way round, so a few helpers serve every op. Everything runs channels-last (NHWC) inside:
    _padded(x)      (N, C, H, W) any layout -> padded (N, Hp, Wp, C)
    _cols(xp)       -> patch rows (M = N*Ho*Wo, kh*kw*C), each row (i, j, c)-ordered: one copy
                       whose inner runs are whole channel vectors (contiguous reads)
    _col2im(gc)     patch grads (N, Ho, Wo, kh, kw, C) -> summed padded image (N, Hp, Wp, C)
The GEMMs put the M output pixels on the rows (tall-skinny products are OpenBLAS's fast ones)
and the weight is permuted once to (kh, kw, C, O) to match, so a conv's output comes out
channels-last in memory (returned as an (N, O, Ho, Wo) view); elementwise ops keep that layout
and the next conv reads it without a transpose copy.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from distbp.autograd import Function
from distbp.ops import primitive


def _pad(x, padding, value=0.0):
    """x (N, C, H, W) -> padded by ((top, bottom), (left, right)) filled with `value` (pooling)."""
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


def _padded(x, padding):
    """x (N, C, H, W), any memory layout -> zero-padded channels-last (N, Hp, Wp, C)."""
    (pt, pb), (pl, pr) = padding
    nhwc = x.transpose(0, 2, 3, 1)
    if not (pt or pb or pl or pr):
        return nhwc  # a view; as_strided below reads any strides
    n, h, w, c = nhwc.shape
    out = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    out[:, pt:pt + h, pl:pl + w] = nhwc
    return out


def _nchw(xp, padding):
    """Padded channels-last (N, Hp, Wp, C) -> the unpadded (N, C, H, W) view."""
    (pt, pb), (pl, pr) = padding
    return xp[:, pt:xp.shape[1] - pb, pl:xp.shape[2] - pr].transpose(0, 3, 1, 2)


def _cols(xp, kh, kw, stride, dilation, ho, wo):
    """Patch rows (N*Ho*Wo, kh*kw*C) of the padded channels-last image xp."""
    n, _, _, c = xp.shape
    (sh, sw), (dh, dw) = stride, dilation
    s0, s1, s2, s3 = xp.strides
    win = as_strided(xp, (n, ho, wo, kh, kw, c), (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3),
                     writeable=False)
    return win.reshape(n * ho * wo, kh * kw * c)


def _col2im(gcols, pshape, stride, dilation):
    """Sum patch grads gcols (N, Ho, Wo, kh, kw, C) into a padded (N, Hp, Wp, C) image:
    kh*kw vectorised strided adds over whole channel vectors."""
    n, ho, wo, kh, kw, c = gcols.shape
    (sh, sw), (dh, dw) = stride, dilation
    gxp = np.zeros((n, pshape[1], pshape[2], c), dtype=gcols.dtype)
    for i in range(kh):
        for j in range(kw):
            gxp[:, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw] += \
                gcols[:, :, :, i, j]
    return gxp


def _group_cols(cols, groups, kk):
    """(M, kh*kw*C) -> (G, M, kh*kw*C/G): the patch columns of each channel group."""
    if groups == 1:
        return cols[None]
    m = cols.shape[0]
    return cols.reshape(m, kk, groups, -1).transpose(2, 0, 1, 3).reshape(groups, m, -1)


def _wmat(weight, groups):
    """Conv weight (O, C/G, kh, kw) -> (G, kh*kw*C/G, O/G), rows (i, j, c) like _cols."""
    o, cg, kh, kw = weight.shape
    w = weight.reshape(groups, o // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)
    return w.reshape(groups, kh * kw * cg, o // groups)


def _apply_weight(gcols, wmat):
    """(G, M, K) @ (G, K, O/G) -> (M, O)."""
    if gcols.shape[0] == 1:
        return gcols[0] @ wmat[0]
    out = np.matmul(gcols, wmat)                                     # (G, M, O/G)
    g, m, og = out.shape
    return out.transpose(1, 0, 2).reshape(m, g * og)


def _grouped(a, groups):
    """(M, G*k) -> (G, M, k): split the channel axis of a channels-last matrix into groups."""
    if groups == 1:
        return a[None]
    return a.reshape(a.shape[0], groups, -1).transpose(1, 0, 2)


def _weight_grad(gcols, g2, wshape, groups):
    """d(out)/d(weight): gcols (G, M, K), g2 (M, O) -> (O, C/G, kh, kw)."""
    o, cg, kh, kw = wshape
    if groups == 1:
        gw = g2.T @ gcols[0]                                         # (O, kh*kw*C)
        return gw.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2)
    gw = np.matmul(_grouped(g2, groups).transpose(0, 2, 1), gcols)   # (G, O/G, K)
    return gw.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2)


def _patch_grads(g2, wmat, n, ho, wo, kh, kw):
    """d(out)/d(cols) as (N, Ho, Wo, kh, kw, C) from g2 (M, O) and wmat (G, K, O/G)."""
    groups = wmat.shape[0]
    if groups == 1:
        gc = g2 @ wmat[0].T                                          # (M, kh*kw*C)
        return gc.reshape(n, ho, wo, kh, kw, -1)
    gc = np.matmul(_grouped(g2, groups), wmat.transpose(0, 2, 1))    # (G, M, kh*kw*C/G)
    m = gc.shape[1]
    gc = gc.reshape(groups, m, kh * kw, -1).transpose(1, 2, 0, 3)    # (M, kh*kw, G, C/G)
    return gc.reshape(n, ho, wo, kh, kw, -1)


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
        ho = out_size(x.shape[2], kh, stride[0], sum(padding[0]), dilation[0], "conv2d", x.shape)
        wo = out_size(x.shape[3], kw, stride[1], sum(padding[1]), dilation[1], "conv2d", x.shape)
        xp = _padded(x, padding)
        gcols = _group_cols(_cols(xp, kh, kw, stride, dilation, ho, wo), groups, kh * kw)
        wmat = _wmat(weight, groups)
        out = _apply_weight(gcols, wmat)                             # (N*Ho*Wo, O)
        if bias is not None:
            out += bias
        ctx.gcols, ctx.wmat, ctx.wshape, ctx.pshape = gcols, wmat, weight.shape, xp.shape
        ctx.geom = (stride, padding, dilation, groups)
        return out.reshape(x.shape[0], ho, wo, o).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        stride, padding, dilation, groups = ctx.geom
        need = ctx.needs_input_grad
        n, _, ho, wo = g.shape
        kh, kw = ctx.wshape[2:]
        g2 = _channels_last(g)
        gx = gw = gb = None
        if need[1]:
            gw = _weight_grad(ctx.gcols, g2, ctx.wshape, groups)
        if len(need) > 2 and need[2]:
            gb = g2.sum(0)
        if need[0]:
            gx = _input_grad(g, g2, ctx, n, ho, wo, kh, kw)
        return gx, gw, gb


def _input_grad(g, g2, ctx, n, ho, wo, kh, kw):
    """d(out)/d(x). Stride 1, one group: a conv of g (padded by d*(k-1) - pad) with the flipped,
    transposed kernel -- an im2col copy and a GEMM with inner dim kh*kw*O instead of a GEMM
    with inner dim O plus kh*kw read-modify-write passes of col2im. Otherwise col2im."""
    stride, padding, dilation, groups = ctx.geom
    pads = tuple((d * (k - 1) - a, d * (k - 1) - b)
                 for d, k, (a, b) in zip(dilation, (kh, kw), padding))
    if stride == (1, 1) and groups == 1 and min(min(p) for p in pads) >= 0:
        _, hp, wp, c = ctx.pshape
        h, w = hp - sum(padding[0]), wp - sum(padding[1])
        wflip = ctx.wmat[0].reshape(kh, kw, c, -1)[::-1, ::-1].transpose(0, 1, 3, 2)  # (kh, kw, O, C)
        cols = _cols(_padded(g, pads), kh, kw, (1, 1), dilation, h, w)               # (N*H*W, kh*kw*O)
        return (cols @ wflip.reshape(-1, c)).reshape(n, h, w, c).transpose(0, 3, 1, 2)
    gcols = _patch_grads(g2, ctx.wmat, n, ho, wo, kh, kw)
    return _nchw(_col2im(gcols, ctx.pshape, stride, dilation), padding)


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
        wmat = _wmat(weight, groups)                                 # conv weight with O = Cin
        gcols = _patch_grads(x2, wmat, n, h, w, kh, kw)              # (N, H, W, kh, kw, Cout)
        pshape = (n, hp, wp, cog * groups)
        out = _nchw(_col2im(gcols, pshape, stride, dilation), padding)
        if bias is not None:
            out = out + bias.reshape(1, -1, 1, 1)
        ctx.x2, ctx.wmat, ctx.wshape, ctx.xshape = x2, wmat, weight.shape, x.shape
        ctx.geom = (stride, padding, dilation, groups)
        return out

    @staticmethod
    def backward(ctx, g):
        stride, padding, dilation, groups = ctx.geom
        need = ctx.needs_input_grad
        n, _, h, w = ctx.xshape
        kh, kw = ctx.wshape[2:]
        gcols = _group_cols(_cols(_padded(g, padding), kh, kw, stride, dilation, h, w), groups,
                            kh * kw)                                 # (G, N*H*W, kh*kw*Cout/G)
        gx = gw = gb = None
        if need[0]:
            gx = _apply_weight(gcols, ctx.wmat).reshape(n, h, w, -1).transpose(0, 3, 1, 2)
        if need[1]:
            gw = _weight_grad(gcols, ctx.x2, ctx.wshape, groups)
        if len(need) > 2 and need[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


def _blocks(cols, n, c, kh, kw, length):
    """Patch rows (N*L, kh*kw*C) -> torch's unfold layout (N, C*kh*kw, L)."""
    return cols.reshape(n, length, kh, kw, c).transpose(0, 4, 2, 3, 1).reshape(n, c * kh * kw, length)


def _unblocks(blocks, n, c, kh, kw, ho, wo):
    """torch's unfold layout (N, C*kh*kw, L) -> patch grads (N, Ho, Wo, kh, kw, C)."""
    return blocks.reshape(n, c, kh, kw, ho, wo).transpose(0, 4, 5, 2, 3, 1)


@primitive
class Im2Col(Function):
    """F.unfold: x (N, C, H, W) -> (N, C*kh*kw, L) sliding blocks, L = Ho*Wo (torch's order)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation):
        kh, kw = kernel_size
        ho = out_size(x.shape[2], kh, stride[0], sum(padding[0]), dilation[0], "unfold", x.shape)
        wo = out_size(x.shape[3], kw, stride[1], sum(padding[1]), dilation[1], "unfold", x.shape)
        xp = _padded(x, padding)
        n, c = x.shape[:2]
        ctx.geom = (xp.shape, kernel_size, stride, padding, dilation, ho, wo)
        return _blocks(_cols(xp, kh, kw, stride, dilation, ho, wo), n, c, kh, kw, ho * wo)

    @staticmethod
    def backward(ctx, g):
        pshape, (kh, kw), stride, padding, dilation, ho, wo = ctx.geom
        n, c = pshape[0], pshape[3]
        return _nchw(_col2im(_unblocks(g, n, c, kh, kw, ho, wo), pshape, stride, dilation), padding)


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
        pshape = (n, h + sum(padding[0]), w + sum(padding[1]), c)
        ctx.geom = (pshape, kernel_size, stride, padding, dilation, ho, wo)
        return _nchw(_col2im(_unblocks(cols, n, c, kh, kw, ho, wo), pshape, stride, dilation), padding)

    @staticmethod
    def backward(ctx, g):
        pshape, (kh, kw), stride, padding, dilation, ho, wo = ctx.geom
        n, c = pshape[0], pshape[3]
        cols = _cols(_padded(g, padding), kh, kw, stride, dilation, ho, wo)
        return _blocks(cols, n, c, kh, kw, ho * wo)
