"""affine_grid and grid_sample (spatial transformers), composed from MatMul, Gather and
elementwise ops: no backward of their own, gradients for input, grid and theta by autograd.

grid_sample reads input (N, C, H, W) at grid (N, Ho, Wo, 2) locations (x, y) in [-1, 1]
(5-D: input (N, C, D, H, W), grid (N, Do, Ho, Wo, 3) as (x, y, z)), with torch's rules:
    source index   align_corners: (g + 1) / 2 * (size - 1);  else ((g + 1) * size - 1) / 2
    padding_mode   zeros: out-of-range taps read 0; border: index clamped to [0, size - 1];
                   reflection: index reflected at the edges (corner pixels' centres if
                   align_corners, else their outer edges), then clamped
    mode           bilinear (trilinear in 5-D): 2**dims corner taps weighted by the fractions;
                   nearest: the tap at the index rounded half to even (no grid gradient);
                   bicubic (4-D only): 4x4 taps, cubic convolution with A = -0.75, padding
                   applied to each tap's coordinate
Each tap is a Gather from the flattened image; its weight depends on the grid, so the grid
gradient is the derivative of the weights, as in torch's kernel.
"""
import itertools
import warnings

import numpy as np

from distbp.tensor import Tensor, where

_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False "
                  "since 1.3.0. Please specify align_corners=True if the old behavior is desired. "
                  "See the documentation of grid_sample for details.")


def _align(align_corners):
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=3)
        return False
    return bool(align_corners)


# ---------------------------------------------------------------- affine_grid

def _base_axis(steps, align_corners, dtype):
    """torch's linspace_from_neg_one: pixel centres in [-1, 1] (0 for a single step)."""
    if steps <= 1:
        return np.zeros(max(steps, 0), dtype=dtype)
    r = np.linspace(-1.0, 1.0, steps, dtype=dtype)
    return r if align_corners else r * (steps - 1) / steps


def affine_grid(theta, size, align_corners=None):
    """theta (N, 2, 3) and size (N, C, H, W) -> grid (N, H, W, 2); theta (N, 3, 4) and size
    (N, C, D, H, W) -> grid (N, D, H, W, 3). The grid is base @ theta^T with base rows (x, y, 1)."""
    align_corners = _align(align_corners)
    size = [int(s) for s in size]
    if not np.issubdtype(theta.dtype, np.floating):
        raise ValueError(f"affine_grid: expected theta to have a floating point dtype, got {theta.dtype}")
    dims = len(size) - 2
    if dims not in (2, 3):
        raise ValueError(f"affine_grid: size must be 4-D (N, C, H, W) or 5-D (N, C, D, H, W), got {size}")
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (dims, dims + 1) or theta.shape[0] != size[0]:
        raise ValueError(f"affine_grid: expected theta of shape ({size[0]}, {dims}, {dims + 1}) for "
                         f"size {size}, got {tuple(theta.shape)}")
    if min(size) <= 0:
        raise ValueError(f"affine_grid: expected a positive output size, got {size}")
    spatial = size[2:]
    axes = [_base_axis(s, align_corners, theta.dtype) for s in spatial]  # (D,) H, W
    mesh = np.meshgrid(*axes, indexing="ij")
    coords = [mesh[-1], mesh[-2]] + ([mesh[0]] if dims == 3 else [])   # x (W), y (H), z (D)
    base = np.stack(coords + [np.ones(spatial, dtype=theta.dtype)], axis=-1)
    base = Tensor(base.reshape(1, -1, dims + 1))
    grid = base @ theta.transpose(1, 2)                                 # (N, prod(spatial), dims)
    return grid.reshape([size[0]] + spatial + [dims])


# ---------------------------------------------------------------- grid_sample

def _unnormalize(g, size, align_corners):
    return (g + 1) * ((size - 1) / 2) if align_corners else ((g + 1) * size - 1) / 2


def _reflect(x, twice_low, twice_high):
    """torch's reflect_coordinates on a Tensor (differentiable: abs and a parity flip)."""
    if twice_low == twice_high:
        return x * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    d = (x - low).abs()
    flips = np.floor(d.data / span)
    extra = d - flips * span
    return where(flips % 2 == 0, extra + low, span - extra + low)


def _reflect_np(x, twice_low, twice_high):
    if twice_low == twice_high:
        return np.zeros_like(x)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    d = np.abs(x - low)
    flips, extra = np.floor(d / span), np.fmod(d, span)
    return np.where(flips % 2 == 0, extra + low, span - extra + low)


def _pad_coord(x, size, padding_mode, align_corners, reflect):
    if padding_mode == "zeros":
        return x
    if padding_mode == "reflection":
        x = reflect(x, 0, 2 * (size - 1)) if align_corners else reflect(x, -1, 2 * size - 1)
    return x.clamp(0, size - 1) if isinstance(x, Tensor) else np.clip(x, 0, size - 1)


class _Taps:
    """Gathers input values at integer (x, y[, z]) taps; out-of-range taps read 0."""

    def __init__(self, input, out_spatial):
        self.n, self.c = input.shape[:2]
        self.sizes = tuple(input.shape[2:])[::-1]                       # (W, H[, D])
        self.flat = input.reshape(self.n, self.c, -1)
        self.out_spatial = out_spatial

    def __call__(self, idx):
        """idx: per dim (x, y[, z]) int arrays (N, P) -> (N, C, P) values and the in-range mask."""
        inside = np.ones(idx[0].shape, dtype=bool)
        flat, stride = np.zeros(idx[0].shape, dtype=np.int64), 1
        for i, size in zip(idx, self.sizes):
            inside &= (i >= 0) & (i < size)
            flat += np.clip(i, 0, size - 1) * stride
            stride *= size
        index = Tensor(np.ascontiguousarray(np.broadcast_to(flat[:, None, :], (self.n, self.c) + flat.shape[1:])))
        vals = self.flat.gather(2, index)
        return vals, inside[:, None, :].astype(self.flat.dtype)


def _cubic_coeffs(t):
    """Cubic convolution weights (A = -0.75) of the 4 taps at offsets -1, 0, 1, 2 for fraction t."""
    a = -0.75

    def near(x):   # |x| <= 1
        return ((x * (a + 2) - (a + 3)) * x) * x + 1

    def far(x):    # 1 < |x| < 2
        return ((x * a - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """input (N, C, H, W) and grid (N, Ho, Wo, 2) -> (N, C, Ho, Wo); 5-D: input (N, C, D, H, W),
    grid (N, Do, Ho, Wo, 3) -> (N, C, Do, Ho, Wo)."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"grid_sample: mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', "
                         f"got {padding_mode!r}")
    align_corners = _align(align_corners)
    dims = input.ndim - 2
    if dims not in (2, 3) or grid.ndim != input.ndim or grid.shape[-1] != dims \
            or grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample: expected input (N, C, H, W) with grid (N, Ho, Wo, 2) or input "
                         f"(N, C, D, H, W) with grid (N, Do, Ho, Wo, 3), got input "
                         f"{tuple(input.shape)} and grid {tuple(grid.shape)}")
    if mode == "bicubic" and dims != 2:
        raise ValueError("grid_sample: mode='bicubic' needs a 4-D input (as in torch)")
    n, out_spatial = grid.shape[0], tuple(grid.shape[1:-1])
    taps = _Taps(input, out_spatial)
    g = grid.reshape(n, -1, dims)
    coords = [_unnormalize(g[:, :, d], size, align_corners) for d, size in enumerate(taps.sizes)]
    if mode == "bicubic":
        out = _bicubic(taps, coords, padding_mode, align_corners)
    else:
        coords = [_pad_coord(x, size, padding_mode, align_corners, _reflect)
                  for x, size in zip(coords, taps.sizes)]
        if mode == "nearest":
            vals, inside = taps([np.rint(x.data).astype(np.int64) for x in coords])
            out = vals * Tensor(inside)
        else:
            low = [np.floor(x.data) for x in coords]
            frac = [x - f for x, f in zip(coords, low)]                 # (N, P) Tensors
            out = 0
            for corner in itertools.product((0, 1), repeat=dims):
                vals, inside = taps([f.astype(np.int64) + b for f, b in zip(low, corner)])
                weight = 1
                for t, b in zip(frac, corner):
                    weight = weight * (t if b else 1 - t)
                out = out + vals * (weight.unsqueeze(1) * Tensor(inside))
    return out.reshape((n, input.shape[1]) + out_spatial)


def _bicubic(taps, coords, padding_mode, align_corners):
    (ix, iy), (w, h) = coords, taps.sizes
    x0, y0 = np.floor(ix.data), np.floor(iy.data)
    cx, cy = _cubic_coeffs(ix - x0), _cubic_coeffs(iy - y0)
    out = 0
    for j in range(4):
        yy = _pad_coord(y0 - 1 + j, h, padding_mode, align_corners, _reflect_np)
        for i in range(4):
            xx = _pad_coord(x0 - 1 + i, w, padding_mode, align_corners, _reflect_np)
            vals, inside = taps([np.trunc(xx).astype(np.int64), np.trunc(yy).astype(np.int64)])
            out = out + vals * ((cx[i] * cy[j]).unsqueeze(1) * Tensor(inside))
    return out
