"""fractional_max_pool2d/3d (Graham, "Fractional Max-Pooling", 2014), composed: the windows are
chosen in numpy, the values are one Gather (so the gradient goes to each window's maximum).

Windows follow torch's generate_intervals exactly: for a plane's sample u in [0, 1) along a dim
with input size n, output size m and kernel k, window i starts at
    int((i + u) * a) - int(u * a),  a = (n - k) / (m - 1)   (computed in the input's dtype)
and the last starts at n - k. The samples are `_random_samples` (N, C, dims) when given, else
uniform draws from distbp's generator (distbp.manual_seed), as torch draws from its own.
Samples index the dims as torch's kernels do: 2-D (w, h), 3-D (t, h, w).
"""
import numpy as np

from distbp.tensor import Tensor

from ._utils import ntuple
from .pooling import _batched, _unbatch


def _intervals(sample, n, m, k, dtype):
    """Window starts (..., m) for samples (...,)."""
    sample = np.asarray(sample, dtype=dtype)
    starts = np.empty(sample.shape + (m,), dtype=np.int64)
    if m > 1:
        a = dtype.type(n - k) / dtype.type(m - 1)
        i = np.arange(m - 1, dtype=dtype)
        starts[..., :-1] = (((i + sample[..., None]) * a).astype(np.int64)
                            - (sample * a).astype(np.int64)[..., None])
    starts[..., -1] = n - k
    return starts


def _fractional(input, kernel_size, output_size, output_ratio, return_indices, samples, dims, what):
    x, unbatched = _batched(input, dims, what)
    n, c = x.shape[:2]
    spatial = tuple(x.shape[2:])
    k = ntuple(kernel_size, dims, "kernel_size")
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{what} requires specifying either an output_size or an output_ratio")
        ratio = (float(output_ratio),) * dims if np.isscalar(output_ratio) else tuple(output_ratio)
        if len(ratio) != dims or not all(0 < r < 1 for r in ratio):
            raise ValueError(f"{what}: output_ratio must be {dims} numbers in (0, 1), got {output_ratio}")
        out = tuple(int(s * r) for s, r in zip(spatial, ratio))
    else:
        out = ntuple(output_size, dims, "output_size")
    for s, o, kk in zip(spatial, out, k):
        if o + kk - 1 > s or o <= 0:
            raise ValueError(f"{what}: output_size {out} with kernel_size {k} does not fit input "
                             f"of shape {tuple(input.shape)} (need output + kernel - 1 <= input)")
    dtype = np.dtype(x.dtype)
    if samples is None:
        from distbp import rand
        samples = rand(n, c, dims, dtype=dtype)
    u = np.asarray(samples.data if isinstance(samples, Tensor) else samples, dtype=dtype)
    if u.shape != (n, c, dims):
        raise ValueError(f"{what}: _random_samples must have shape {(n, c, dims)}, got {u.shape}")
    order = (1, 0) if dims == 2 else (0, 1, 2)                        # torch's sample per dim
    starts = [_intervals(u[:, :, order[d]], spatial[d], out[d], k[d], dtype) for d in range(dims)]
    # absolute coordinates of every tap: per dim (N, C, *out, *k), broadcast
    coords = []
    for d in range(dims):
        shape = [n, c] + [1] * (2 * dims)
        shape[2 + d] = out[d]
        kshape = [1, 1] + [1] * (2 * dims)
        kshape[2 + dims + d] = k[d]
        coords.append(starts[d].reshape(shape) + np.arange(k[d]).reshape(kshape))
    strides = np.cumprod((1,) + spatial[::-1])[:-1][::-1]             # row-major flat strides
    flat = sum(cd * int(st) for cd, st in zip(coords, strides))       # (N, C, *out, *k)
    flat = np.broadcast_to(flat, (n, c) + out + k).reshape(n, c, int(np.prod(out)), -1)
    xf = x.reshape(n, c, -1)
    vals = np.take_along_axis(xf.data, flat.reshape(n, c, -1), axis=2).reshape(flat.shape)
    best = vals.argmax(-1)                                            # first maximum, like torch
    idx = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]  # (N, C, prod(out))
    result = xf.gather(2, Tensor(idx)).reshape((n, c) + out)
    if return_indices:
        return _unbatch((result, Tensor(idx.reshape((n, c) + out))), unbatched)
    return _unbatch(result, unbatched)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """input (N, C, H, W) or (C, H, W) -> (N, C, *output_size) [, flat indices into H*W]."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, 2, "fractional_max_pool2d")


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """input (N, C, T, H, W) or (C, T, H, W) -> (N, C, *output_size) [, flat indices into T*H*W]."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, 3, "fractional_max_pool3d")


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)
