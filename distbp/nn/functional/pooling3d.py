"""3-D pooling (max, avg, adaptive max, lp) and max-unpooling (1-D/2-D/3-D), composed.

Max and average pooling over a (kd, kh, kw) box are separable: pool (h, w) on every depth slice
with the 2-D primitive, then pool depth with a (kd, 1) 2-D pool over (N, C, D, Ho*Wo). The window
of each dim is clipped independently, so torch's divisors (count_include_pad, ceil_mode) are the
product of the per-dim ones, and the first maximum in (d, h, w) order wins like in torch's loop.
The flat index into D*H*W is the depth stage's d times H*W plus the (h, w) stage's index there.

max_unpool scatters each value to its index: it is one Gather from the input extended by a zero
slot (every output position reads the input element that claimed it, or the zero), so its
gradient is Gather's. Where two inputs claim one position (overlapping windows) the later wins.
"""
import numpy as np

from distbp.tensor import Tensor, cat

from ._utils import ntuple
from .pooling import (_batched, _output_size, _unbatch, adaptive_max_pool2d, avg_pool2d,
                      max_pool2d)


def _indices3(i1, i2, h, w, hw_out):
    """Flat (d, h, w) indices from the (h, w) stage's i1 (N, C*D, Ho, Wo) and the depth stage's
    i2 (N, C, Do, Ho*Wo) (flat into (D, Ho*Wo))."""
    n, c, do, m = i2.shape
    depth = i2 // m                                                  # (N, C, Do, Ho*Wo)
    hw = np.take_along_axis(i1.reshape(n, c, -1, m), depth, axis=2)  # (h, w) index at that depth
    return (depth * (h * w) + hw).reshape((n, c, do) + tuple(hw_out))


def _check_windows(what, input, k, s, p, d):
    """Name the 3-D call (not its 2-D stages) when a window does not fit."""
    for i, (n, kk, ss, pp, dd) in enumerate(zip(input.shape[-3:], k, s, p, d)):
        span = dd * (kk - 1) + 1
        if kk <= 0 or ss <= 0:
            raise ValueError(f"{what}: kernel_size {k} and stride {s} must be positive")
        if pp > span // 2:
            raise ValueError(f"{what}: padding {p} should be at most half of the effective kernel "
                             f"size (dim {i}: {pp} > {span} // 2)")
        if n + 2 * pp < span:
            dil = f" (dilation {d})" if any(v != 1 for v in d) else ""
            raise ValueError(f"{what}: kernel_size {k}{dil} with padding {p} is larger than the "
                             f"padded input (input shape {tuple(input.shape)})")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """input (N, C, D, H, W) or (C, D, H, W) -> (N, C, Do, Ho, Wo) [, flat indices into D*H*W]."""
    x, unbatched = _batched(input, 3, "max_pool3d")
    k = ntuple(kernel_size, 3, "kernel_size")
    s = k if stride is None else ntuple(stride, 3, "stride")
    p, dl = ntuple(padding, 3, "padding"), ntuple(dilation, 3, "dilation")
    _check_windows("max_pool3d", input, k, s, p, dl)
    n, c, d, h, w = x.shape
    y, i1 = max_pool2d(x.reshape(n, c * d, h, w), k[1:], s[1:], p[1:], dl[1:], ceil_mode, True)
    ho, wo = y.shape[2:]
    y, i2 = max_pool2d(y.reshape(n, c, d, ho * wo), (k[0], 1), (s[0], 1), (p[0], 0), (dl[0], 1),
                       ceil_mode, True)
    do = y.shape[2]
    out = y.reshape(n, c, do, ho, wo)
    if not return_indices:
        return _unbatch(out, unbatched)
    idx = _indices3(i1.data, i2.data, h, w, (ho, wo))
    return _unbatch((out, Tensor(idx)), unbatched)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """input (N, C, D, H, W) or (C, D, H, W) -> (N, C, Do, Ho, Wo)."""
    x, unbatched = _batched(input, 3, "avg_pool3d")
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool3d: divisor_override must be positive, got {divisor_override}")
    k = ntuple(kernel_size, 3, "kernel_size")
    s = k if stride is None else ntuple(stride, 3, "stride")
    p = ntuple(padding, 3, "padding")
    _check_windows("avg_pool3d", input, k, s, p, (1, 1, 1))
    n, c, d, h, w = x.shape
    one = None if divisor_override is None else 1                    # sums, divided at the end
    y = avg_pool2d(x.reshape(n, c * d, h, w), k[1:], s[1:], p[1:], ceil_mode, count_include_pad, one)
    ho, wo = y.shape[2:]
    y = avg_pool2d(y.reshape(n, c, d, ho * wo), (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode,
                   count_include_pad, one)
    out = y.reshape(n, c, y.shape[2], ho, wo)
    if divisor_override is not None:
        out = out / float(divisor_override)
    return _unbatch(out, unbatched)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """input (N, C, D, H, W) or (C, D, H, W) -> (N, C, *output_size); None keeps that dim."""
    x, unbatched = _batched(input, 3, "adaptive_max_pool3d")
    n, c, d, h, w = x.shape
    do, ho, wo = _output_size(output_size, (d, h, w), "adaptive_max_pool3d")
    y, i1 = adaptive_max_pool2d(x.reshape(n, c * d, h, w), (ho, wo), True)
    y, i2 = adaptive_max_pool2d(y.reshape(n, c, d, ho * wo), (do, ho * wo), True)
    out = y.reshape(n, c, do, ho, wo)
    if not return_indices:
        return _unbatch(out, unbatched)
    return _unbatch((out, Tensor(_indices3(i1.data, i2.data, h, w, (ho, wo)))), unbatched)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool3d(input, output_size, True)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over each window of x**p) ** (1/p), torch's formula via avg pooling; p = inf: max."""
    kd, kh, kw = ntuple(kernel_size, 3, "kernel_size")
    if norm_type == float("inf"):
        return max_pool3d(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool3d(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    pooled = avg_pool3d(input ** norm_type, (kd, kh, kw), stride, 0, ceil_mode)
    sign = Tensor(np.sign(pooled.data))
    return (sign * pooled.abs().relu() * (kd * kh * kw)) ** (1.0 / norm_type)


# ---------------------------------------------------------------- max_unpool

def _unpool_size(x, dims, kernel, stride, padding, output_size, what):
    """torch's _unpool_output_size: (in - 1) * stride - 2 * padding + kernel per dim, or the
    requested output_size (spatial dims, optionally with N, C in front) within a stride of it."""
    default = [(x.shape[-dims + i] - 1) * stride[i] + kernel[i] - 2 * padding[i] for i in range(dims)]
    if output_size is None:
        size = default
    else:
        size = [int(v) for v in output_size]
        if len(size) == dims + 2:
            size = size[2:]
        if len(size) != dims:
            raise ValueError(f"{what}: output_size should be a sequence of {dims} or {dims + 2} "
                             f"elements, got {tuple(output_size)}")
        for i in range(dims):
            lo, hi = default[i] - stride[i], default[i] + stride[i]
            if not lo < size[i] < hi:
                raise ValueError(f"{what}: invalid output_size {tuple(output_size)} (dim {i} must "
                                 f"be between {lo} and {hi})")
    if any(v <= 0 for v in size):
        raise ValueError(f"{what}: output size {tuple(size)} has a non-positive dim")
    return tuple(size)


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, dims, what):
    x, unbatched = _batched(input, dims, what)
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if tuple(idx.shape[-dims:]) != tuple(input.shape[-dims:]) or idx.size != input.data.size:
        raise ValueError(f"{what}: indices of shape {tuple(idx.shape)} must have the shape of "
                         f"input {tuple(input.shape)} (the indices returned by the max pool)")
    k = ntuple(kernel_size, dims, "kernel_size")
    s = k if stride is None else ntuple(stride, dims, "stride")
    size = _unpool_size(x, dims, k, s, ntuple(padding, dims, "padding"), output_size, what)
    n, c = x.shape[:2]
    total = int(np.prod(size))
    flat_idx = idx.reshape(n, c, -1).astype(np.int64)
    if flat_idx.size and (flat_idx.min() < 0 or flat_idx.max() >= total):
        bad = flat_idx[(flat_idx < 0) | (flat_idx >= total)].flat[0]
        raise ValueError(f"{what}: found an invalid max index {bad} (output volume of size "
                         f"{'x'.join(map(str, size))})")
    length = flat_idx.shape[2]
    # inverse map: output position -> the input element written there, or `length` (the zero slot)
    inv = np.full((n, c, total), length, dtype=np.int64)
    rows = np.arange(n)[:, None, None], np.arange(c)[None, :, None]
    inv[rows[0], rows[1], flat_idx] = np.arange(length)[None, None, :]
    ext = cat([x.reshape(n, c, length), Tensor(np.zeros((n, c, 1), dtype=x.dtype))], dim=2)
    out = ext.gather(2, Tensor(inv)).reshape((n, c) + size)
    return _unbatch(out, unbatched)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool1d: (N, C, L) values and indices -> (N, C, Lout), zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d: (N, C, H, W) values and flat indices into Hout*Wout."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool3d: (N, C, D, H, W) values and flat indices into Dout*Hout*Wout."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")
