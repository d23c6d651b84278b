"""Pooling: max/avg (ceil_mode, dilation, count_include_pad, return_indices), adaptive avg/max,
lp pooling. 2-D primitives in distbp/ops/nn.py; 1-D versions add a height-1 axis.

Adaptive average pooling is two matrix products with constant averaging matrices (exact for any
input/output sizes and differentiable through MatMul); adaptive max pooling gathers the argmax of
each cell (first maximum wins, like torch).
"""
import numpy as np

from distbp.ops import nn as NN
from distbp.tensor import Tensor

from ._utils import ntuple


def _batched(input, ndim, what):
    if input.ndim == ndim + 1:
        return input.unsqueeze(0), True
    if input.ndim != ndim + 2:
        layout = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[ndim]
        raise ValueError(f"{what}: expected input {layout} (or unbatched without N), got shape "
                         f"{tuple(input.shape)}")
    return input, False


def _unbatch(out, unbatched):
    if isinstance(out, tuple):
        return tuple(_unbatch(o, unbatched) for o in out)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------- max / avg

def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    x, unbatched = _batched(input, 2, "max_pool2d")
    k = ntuple(kernel_size, 2, "kernel_size")
    sink = [] if return_indices else None
    out = NN.MaxPool2d.apply(x, kernel_size=k, stride=k if stride is None else ntuple(stride, 2, "stride"),
                             padding=ntuple(padding, 2, "padding"),
                             dilation=ntuple(dilation, 2, "dilation"), ceil_mode=ceil_mode,
                             indices_out=sink)
    return _unbatch((out, Tensor(sink[0])) if return_indices else out, unbatched)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    x, unbatched = _batched(input, 1, "max_pool1d")
    k = ntuple(kernel_size, 1, "kernel_size")[0]
    s = k if stride is None else ntuple(stride, 1, "stride")[0]
    out = max_pool2d(x.unsqueeze(2), (1, k), (1, s), (0, ntuple(padding, 1, "padding")[0]),
                     (1, ntuple(dilation, 1, "dilation")[0]), ceil_mode, return_indices)
    out = tuple(o.squeeze(2) for o in out) if return_indices else out.squeeze(2)
    return _unbatch(out, unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x, unbatched = _batched(input, 2, "avg_pool2d")
    k = ntuple(kernel_size, 2, "kernel_size")
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}")
    out = NN.AvgPool2d.apply(x, kernel_size=k, stride=k if stride is None else ntuple(stride, 2, "stride"),
                             padding=ntuple(padding, 2, "padding"), ceil_mode=ceil_mode,
                             count_include_pad=count_include_pad, divisor_override=divisor_override)
    return _unbatch(out, unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x, unbatched = _batched(input, 1, "avg_pool1d")
    k = ntuple(kernel_size, 1, "kernel_size")[0]
    s = k if stride is None else ntuple(stride, 1, "stride")[0]
    out = avg_pool2d(x.unsqueeze(2), (1, k), (1, s), (0, ntuple(padding, 1, "padding")[0]),
                     ceil_mode, count_include_pad).squeeze(2)
    return _unbatch(out, unbatched)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over each window of x**p) ** (1/p), torch's formula via avg pooling."""
    kh, kw = ntuple(kernel_size, 2, "kernel_size")
    pooled = avg_pool2d(input ** norm_type, (kh, kw), stride, 0, ceil_mode)
    sign = Tensor(np.sign(pooled.data))
    return (sign * pooled.abs().relu() * (kh * kw)) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    k = ntuple(kernel_size, 1, "kernel_size")[0]
    pooled = avg_pool1d(input ** norm_type, k, stride, 0, ceil_mode)
    sign = Tensor(np.sign(pooled.data))
    return (sign * pooled.abs().relu() * k) ** (1.0 / norm_type)


# ---------------------------------------------------------------- adaptive

def _cells(size, out):
    """torch's adaptive windows: cell i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _output_size(output_size, spatial, what):
    sizes = ntuple(output_size, len(spatial), "output_size") if output_size is not None and not \
        isinstance(output_size, (tuple, list)) else tuple(output_size)
    if len(sizes) != len(spatial):
        raise ValueError(f"{what}: output_size {output_size} needs {len(spatial)} entries")
    return tuple(s if o is None else int(o) for o, s in zip(sizes, spatial))


def _avg_matrix(size, out, dtype):
    """(out, size) matrix whose row i averages cell i."""
    start, end = _cells(size, out)
    m = np.zeros((out, size), dtype=dtype)
    for i, (s, e) in enumerate(zip(start, end)):
        m[i, s:e] = 1.0 / (e - s)
    return m


def _adaptive_avg(input, output_size, dims, what):
    """Average each spatial dim in turn: x @ A^T along the last axis (A = averaging matrix)."""
    x, unbatched = _batched(input, dims, what)
    spatial = tuple(x.shape[2:])
    sizes = _output_size(output_size, spatial, what)
    if all(s == 1 for s in sizes):
        return _unbatch(x.mean(dim=tuple(range(2, 2 + dims)), keepdim=True), unbatched)
    nd = x.ndim
    for d, (n_in, n_out) in enumerate(zip(spatial, sizes), start=2):
        if n_in == n_out:
            continue
        a = Tensor(_avg_matrix(n_in, n_out, x.dtype).T)               # (in, out)
        x = x @ a if d == nd - 1 else (x.transpose(d, nd - 1) @ a).transpose(d, nd - 1)
    return _unbatch(x, unbatched)


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    x, unbatched = _batched(input, 2, "adaptive_max_pool2d")
    n, c, h, w = x.shape
    ho, wo = _output_size(output_size, (h, w), "adaptive_max_pool2d")
    if h % ho == 0 and w % wo == 0:  # equal, non-overlapping cells: an ordinary max pool
        out = max_pool2d(x, (h // ho, w // wo), return_indices=return_indices)
        return _unbatch(out, unbatched)
    (hs, he), (ws, we) = _cells(h, ho), _cells(w, wo)
    xd = x.data
    idx = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            cell = xd[:, :, hs[i]:he[i], ws[j]:we[j]].reshape(n, c, -1)
            a = cell.argmax(-1)                       # first maximum, like torch
            cw = we[j] - ws[j]
            idx[:, :, i, j] = (hs[i] + a // cw) * w + ws[j] + a % cw
    flat = idx.reshape(n, c, -1)
    out = x.reshape(n, c, h * w)[np.arange(n)[:, None, None], np.arange(c)[None, :, None], flat]
    out = out.reshape(n, c, ho, wo)
    return _unbatch((out, Tensor(idx)) if return_indices else out, unbatched)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    x, unbatched = _batched(input, 1, "adaptive_max_pool1d")
    (lo,) = _output_size(output_size, x.shape[2:], "adaptive_max_pool1d")
    out = adaptive_max_pool2d(x.unsqueeze(2), (1, lo), return_indices)
    out = tuple(o.squeeze(2) for o in out) if return_indices else out.squeeze(2)
    return _unbatch(out, unbatched)


# torch's always-return-indices spellings
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool2d(input, output_size, True)
