"""linear, bilinear and convolutions (conv1d/2d, conv_transpose1d/2d, unfold, fold, conv_tbc).

All convolutions run on the 2-D primitives in distbp/ops/conv.py; 1-D ones add a height-1 axis.
Unbatched inputs ((C, L) for 1-D, (C, H, W) for 2-D) get a batch axis added and removed, as in torch.
"""
from distbp.ops import conv as C
from distbp.ops import linalg as L

from ._utils import ntuple


def linear(input, weight, bias=None):
    """input (..., in) @ weight (out, in).T + bias (out,)."""
    return L.Linear.apply(input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """y_k = x1 W_k x2 + b_k: input1 (..., I1), input2 (..., I2), weight (O, I1, I2) -> (..., O)."""
    o, i1, i2 = weight.shape
    if input1.shape[-1] != i1 or input2.shape[-1] != i2 or input1.shape[:-1] != input2.shape[:-1]:
        raise ValueError(f"bilinear: inputs of shape {tuple(input1.shape)} and {tuple(input2.shape)} "
                         f"do not match weight of shape {tuple(weight.shape)}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, i1), input2.reshape(-1, i2)
    t = (x1 @ weight.permute(1, 0, 2).reshape(i1, o * i2)).reshape(-1, o, i2)   # (M, O, I2)
    y = (t * x2.unsqueeze(1)).sum(-1)                                          # (M, O)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (o,))


def _padding_pairs(padding, kernel, dilation, stride, what):
    """int / tuple / 'valid' / 'same' -> ((top, bottom), (left, right)); 'same' puts an odd extra
    row/column at the end, like torch."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ValueError(f"{what}: padding must be an int, a tuple, 'valid' or 'same', got "
                             f"{padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{what}: padding='same' is not supported for strided convolutions "
                             f"(stride {stride})")
        pairs = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    return tuple((p, p) for p in ntuple(padding, 2, "padding"))


def _batched(input, ndim, what, layout):
    if input.ndim == ndim + 1:
        return input.unsqueeze(0), True
    if input.ndim != ndim + 2:
        raise ValueError(f"{what}: expected input {layout} (or unbatched without N), got shape "
                         f"{tuple(input.shape)}")
    return input, False


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, H, W), weight (O, C/groups, kh, kw) -> (N, O, Ho, Wo)."""
    x, unbatched = _batched(input, 2, "conv2d", "(N, C, H, W)")
    stride, dilation = ntuple(stride, 2, "stride"), ntuple(dilation, 2, "dilation")
    pads = _padding_pairs(padding, weight.shape[2:], dilation, stride, "conv2d")
    out = C.Conv2d.apply(x, weight, bias, stride=stride, padding=pads, dilation=dilation,
                         groups=groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, L), weight (O, C/groups, k) -> (N, O, Lo); a conv2d with height 1."""
    x, unbatched = _batched(input, 1, "conv1d", "(N, C, L)")
    if weight.ndim != 3 or weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"conv1d: input of shape {tuple(input.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} with groups={groups} (expected input "
                         f"(N, {weight.shape[1] * groups}, L))")
    if not isinstance(padding, str):
        padding = (0, ntuple(padding, 1, "padding")[0])
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, stride=(1, ntuple(stride, 1, "stride")[0]),
                 padding=padding, dilation=(1, ntuple(dilation, 1, "dilation")[0]), groups=groups)
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """input (N, Cin, H, W), weight (Cin, Cout/groups, kh, kw) -> (N, Cout, Ho, Wo)."""
    x, unbatched = _batched(input, 2, "conv_transpose2d", "(N, C, H, W)")
    stride, dilation = ntuple(stride, 2, "stride"), ntuple(dilation, 2, "dilation")
    output_padding = ntuple(output_padding, 2, "output_padding")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than "
                         f"either stride {stride} or dilation {dilation}")
    pads = tuple((p, p) for p in ntuple(padding, 2, "padding"))
    out = C.ConvTranspose2d.apply(x, weight, bias, stride=stride, padding=pads,
                                  output_padding=output_padding, dilation=dilation, groups=groups)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """input (N, Cin, L), weight (Cin, Cout/groups, k) -> (N, Cout, Lo)."""
    x, unbatched = _batched(input, 1, "conv_transpose1d", "(N, C, L)")
    one = lambda v, name: (0 if name in ("padding", "output_padding") else 1, ntuple(v, 1, name)[0])  # noqa: E731
    out = conv_transpose2d(x.unsqueeze(2), weight.unsqueeze(2), bias, stride=one(stride, "stride"),
                           padding=one(padding, "padding"),
                           output_padding=one(output_padding, "output_padding"), groups=groups,
                           dilation=one(dilation, "dilation")).squeeze(2)
    return out.squeeze(0) if unbatched else out


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks: (N, C, H, W) -> (N, C*kh*kw, L)."""
    x, unbatched = _batched(input, 2, "unfold", "(N, C, H, W)")
    out = C.Im2Col.apply(x, kernel_size=ntuple(kernel_size, 2, "kernel_size"),
                         stride=ntuple(stride, 2, "stride"),
                         padding=tuple((p, p) for p in ntuple(padding, 2, "padding")),
                         dilation=ntuple(dilation, 2, "dilation"))
    return out.squeeze(0) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Inverse of unfold (overlaps summed): (N, C*kh*kw, L) -> (N, C, H, W)."""
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 3:
        raise ValueError(f"fold: expected input (N, C*kh*kw, L), got shape {tuple(input.shape)}")
    out = C.Col2Im.apply(x, output_size=ntuple(output_size, 2, "output_size"),
                         kernel_size=ntuple(kernel_size, 2, "kernel_size"),
                         stride=ntuple(stride, 2, "stride"),
                         padding=tuple((p, p) for p in ntuple(padding, 2, "padding")),
                         dilation=ntuple(dilation, 2, "dilation"))
    return out.squeeze(0) if unbatched else out


def conv_tbc(input, weight, bias, pad=0):
    """Time-major 1-D convolution: input (T, B, Cin), weight (k, Cin, Cout), bias (Cout,) ->
    (T + 2 * pad - k + 1, B, Cout); conv1d on the (B, Cin, T) view."""
    if input.ndim != 3 or weight.ndim != 3 or weight.shape[1] != input.shape[2]:
        raise ValueError(f"conv_tbc: expected input (T, B, Cin) and weight (k, Cin, Cout), got "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    out = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=pad)
    return out.permute(2, 0, 1)
