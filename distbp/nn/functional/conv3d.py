"""conv3d and conv_transpose3d, composed from the 2-D primitives (no backward of their own).

conv3d: the depth taps are stacked into the channel axis and the depth positions into the batch,
then one Conv2d does the (h, w) work:
    x (N, C, D, H, W) -> depth-padded -> kd strided depth slices, each (N, C, Do, H, W)
      -> (N*Do, G*kd*C/G, H, W)   [channels ordered (group, tap, channel) so groups stay intact]
    weight (O, C/G, kd, kh, kw) -> (O, kd*C/G, kh, kw)
    Conv2d -> (N*Do, O, Ho, Wo) -> (N, O, Do, Ho, Wo)
conv_transpose3d: one ConvTranspose2d per depth position with all kd taps as extra output
channels, then Col2Im (F.fold's primitive) along depth sums the taps into their output depths:
    x (N, Cin, D, H, W) -> (N*D, Cin, H, W); weight (Cin, Cout/G, kd, kh, kw) -> (Cin, kd*Cout/G, kh, kw)
    ConvTranspose2d -> (N*D, G*kd*Cout/G, Ho, Wo) -> (N, Cout*Ho*Wo*kd, D)
    col2im, kernel (kd, 1), stride (sd, 1), dilation (dd, 1), padding (pd, 0) -> (N, Cout, Do, Ho, Wo)
Both are differentiable through the primitives they use (GetItem, Cat, Reshape, Permute, Conv2d,
ConvTranspose2d, Col2Im), so their gradients need no code here.
"""
from distbp.ops import conv as C
from distbp.tensor import cat

from ._utils import ntuple
from .conv import _batched
from .vision import pad


def _pairs3(padding, kernel, dilation, stride):
    """int / 3-tuple / 'valid' / 'same' -> three (before, after) pairs ('same': odd extra at the end)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * 3
        if padding != "same":
            raise ValueError(f"conv3d: padding must be an int, a tuple, 'valid' or 'same', got "
                             f"{padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"conv3d: padding='same' is not supported for strided convolutions "
                             f"(stride {stride})")
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for k, d in zip(kernel, dilation))
    return tuple((p, p) for p in ntuple(padding, 3, "padding"))


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, D, H, W), weight (O, C/groups, kd, kh, kw) -> (N, O, Do, Ho, Wo)."""
    x, unbatched = _batched(input, 3, "conv3d", "(N, C, D, H, W)")
    if weight.ndim != 5 or weight.shape[1] * groups != x.shape[1] or weight.shape[0] % groups:
        raise ValueError(f"conv3d: input of shape {tuple(input.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} with groups={groups} (expected input "
                         f"(N, {weight.shape[1] * groups}, D, H, W), out channels divisible by groups)")
    stride, dilation = ntuple(stride, 3, "stride"), ntuple(dilation, 3, "dilation")
    o, cg, kd, kh, kw = weight.shape
    (pa, pb), hpad, wpad = _pairs3(padding, (kd, kh, kw), dilation, stride)
    if pa or pb:
        x = pad(x, (0, 0, 0, 0, pa, pb))
    n, c, d, h, w = x.shape
    sd, dd = stride[0], dilation[0]
    do = C.out_size(d, kd, sd, 0, dd, "conv3d", tuple(input.shape))
    for size, k, st, pp, dl in zip((h, w), (kh, kw), stride[1:], (hpad, wpad), dilation[1:]):
        C.out_size(size, k, st, sum(pp), dl, "conv3d", tuple(input.shape))  # raises naming conv3d
    taps = [x[:, :, i * dd:i * dd + sd * (do - 1) + 1:sd].reshape(n, groups, 1, cg, do, h, w)
            for i in range(kd)]
    cols = taps[0] if kd == 1 else cat(taps, dim=2)                   # (N, G, kd, C/G, Do, H, W)
    cols = cols.permute(0, 4, 1, 2, 3, 5, 6).reshape(n * do, groups * kd * cg, h, w)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(o, kd * cg, kh, kw)
    out = C.Conv2d.apply(cols, w2, bias, stride=stride[1:], padding=(hpad, wpad),
                         dilation=dilation[1:], groups=groups)         # (N*Do, O, Ho, Wo)
    ho, wo = out.shape[2:]
    out = out.reshape(n, do, o, ho, wo).permute(0, 2, 1, 3, 4)
    return out.squeeze(0) if unbatched else out


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """input (N, Cin, D, H, W), weight (Cin, Cout/groups, kd, kh, kw) -> (N, Cout, Do, Ho, Wo),
    Do = (D - 1) * sd - 2 * pd + dd * (kd - 1) + output_padding + 1 (likewise Ho, Wo)."""
    x, unbatched = _batched(input, 3, "conv_transpose3d", "(N, C, D, H, W)")
    if weight.ndim != 5 or weight.shape[0] != x.shape[1] or x.shape[1] % groups:
        raise ValueError(f"conv_transpose3d: input of shape {tuple(input.shape)} does not match "
                         f"weight of shape {tuple(weight.shape)} with groups={groups} (expected "
                         f"input (N, {weight.shape[0]}, D, H, W), in channels divisible by groups)")
    stride, dilation = ntuple(stride, 3, "stride"), ntuple(dilation, 3, "dilation")
    padding, output_padding = ntuple(padding, 3, "padding"), ntuple(output_padding, 3, "output_padding")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"conv_transpose3d: output_padding {output_padding} must be smaller than "
                         f"either stride {stride} or dilation {dilation}")
    cin, cog, kd, kh, kw = weight.shape
    n, _, d, h, w = x.shape
    (sd, dd, pd, opd) = stride[0], dilation[0], padding[0], output_padding[0]
    for i, (size, k) in enumerate(zip((d, h, w), (kd, kh, kw))):
        if (size - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k - 1) + 1 <= 0:
            raise ValueError(f"conv_transpose3d: padding {padding} leaves no output for input "
                             f"shape {tuple(input.shape)} and kernel {(kd, kh, kw)}")
    xs = x.permute(0, 2, 1, 3, 4).reshape(n * d, cin, h, w)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(cin, kd * cog, kh, kw)  # out channel (tap, c) per group
    y = C.ConvTranspose2d.apply(xs, w2, None, stride=stride[1:],
                                padding=tuple((p, p) for p in padding[1:]),
                                output_padding=output_padding[1:], dilation=dilation[1:],
                                groups=groups)                        # (N*D, G*kd*Cout/G, Ho, Wo)
    ho, wo = y.shape[2:]
    cout = cog * groups
    y = y.reshape(n, d, groups, kd, cog, ho, wo).permute(0, 2, 4, 5, 6, 3, 1)
    y = y.reshape(n, cout * ho * wo * kd, d)                          # fold's (N, C*kd*1, L)
    full = (d - 1) * sd - 2 * pd + dd * (kd - 1) + 1                  # before output_padding
    # output_padding extends the end into what padding would crop: crop less there (or pad zeros)
    after = pd - opd
    size = full + opd if after >= 0 else full + pd
    out = C.Col2Im.apply(y, output_size=(size, 1), kernel_size=(kd, 1), stride=(sd, 1),
                         padding=((pd, max(after, 0)), (0, 0)), dilation=(dd, 1))
    out = out.reshape(n, cout, ho, wo, size).permute(0, 1, 4, 2, 3)  # (N, Cout, Do, Ho, Wo)
    if after < 0:
        out = pad(out, (0, 0, 0, 0, 0, -after))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out
