"""pad, interpolate/upsample, pixel_shuffle/unshuffle, channel_shuffle.

Interpolation is separable: along each spatial dim the output is a constant (out, in) matrix
times the input (nearest: 0/1 rows; linear: two taps; bicubic: four), built with torch's
source-index rules. The grads come from MatMul, exact and fast for the usual sizes.
"""
import math

import numpy as np

from distbp.ops.padding import ConstantPad
from distbp.tensor import Tensor, cat

from .pooling import adaptive_avg_pool1d, adaptive_avg_pool2d


# ---------------------------------------------------------------- pad

def _along(ndim, d, sl):
    return (slice(None),) * d + (sl,)


def _pad_dim(x, d, before, after, mode):
    """Pad dim d of x by (before, after) >= 0 with reflect / replicate / circular values."""
    n = x.shape[d]
    parts = []
    if mode == "reflect":
        if before >= n or after >= n:
            raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than the "
                             f"size {n} of dim {d} (input shape {tuple(x.shape)})")
        if before:
            parts.append(x[_along(x.ndim, d, slice(before, 0, -1))])
        parts.append(x)
        if after:
            stop = n - 2 - after  # -1 would mean "the last element" to a slice: use None
            parts.append(x[_along(x.ndim, d, slice(n - 2, stop if stop >= 0 else None, -1))])
    elif mode == "replicate":
        def edge(i, count):
            e = x[_along(x.ndim, d, slice(i, i + 1))]
            return e.expand(tuple(count if j == d else s for j, s in enumerate(x.shape)))
        if before:
            parts.append(edge(0, before))
        parts.append(x)
        if after:
            parts.append(edge(n - 1, after))
    elif mode == "circular":
        if before > n or after > n:
            raise ValueError(f"pad: circular padding ({before}, {after}) must be at most the "
                             f"size {n} of dim {d} (input shape {tuple(x.shape)})")
        if before:
            parts.append(x[_along(x.ndim, d, slice(n - before, n))])
        parts.append(x)
        if after:
            parts.append(x[_along(x.ndim, d, slice(0, after))])
    else:
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    return parts[0] if len(parts) == 1 else cat(parts, dim=d)


def pad(input, pad, mode="constant", value=None):
    """pad = (last_before, last_after, 2nd_last_before, ...): pairs for the trailing dims."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most twice the "
                         f"{input.ndim} dims of input shape {tuple(input.shape)}")
    k = len(pad) // 2
    pairs = [(0, 0)] * (input.ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(k))]
    if mode == "constant":
        return ConstantPad.apply(input, pads=tuple(pairs), value=0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    x = input
    crops = [(min(b, 0), min(a, 0)) for b, a in pairs]
    if any(b or a for b, a in crops):  # negative pads crop first
        x = ConstantPad.apply(x, pads=tuple(crops))
    for d, (b, a) in enumerate(pairs):
        if b > 0 or a > 0:
            x = _pad_dim(x, d, max(b, 0), max(a, 0), mode)
    return x


# ---------------------------------------------------------------- interpolate

_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}


def _sizes(input, size, scale_factor, recompute_scale_factor):
    """Output sizes and the per-dim scale (in/out) that torch's index rules use."""
    spatial = tuple(input.shape[2:])
    n = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size or scale_factor must be given")
    if size is not None:
        out = (size,) * n if isinstance(size, (int, np.integer)) else tuple(size)
        if len(out) != n:
            raise ValueError(f"interpolate: size {size} must have {n} entries for input shape "
                             f"{tuple(input.shape)}")
        return tuple(int(o) for o in out), [None] * n
    sf = (scale_factor,) * n if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(sf) != n:
        raise ValueError(f"interpolate: scale_factor {scale_factor} must have {n} entries for "
                         f"input shape {tuple(input.shape)}")
    out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, sf))
    return out, [None if recompute_scale_factor else 1.0 / f for f in sf]


def _src(dst, n_in, n_out, scale, align_corners, cubic=False):
    """torch's area_pixel_compute_source_index."""
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    s = n_in / n_out if scale is None else scale
    src = s * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _cubic_weights(t, a=-0.75):
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for fractional offset t."""
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _matrix(mode, n_in, n_out, scale, align_corners, dtype):
    m = np.zeros((n_out, n_in))
    dst = np.arange(n_out, dtype=np.float64)
    rows = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        s = n_in / n_out if scale is None else scale
        src = np.floor((dst + (0.5 if mode == "nearest-exact" else 0.0)) * s).astype(np.int64)
        m[rows, np.minimum(src, n_in - 1)] = 1
    elif mode == "bicubic":
        src = _src(dst, n_in, n_out, scale, align_corners, cubic=True)
        i0 = np.floor(src).astype(np.int64)
        for tap, w in zip(range(-1, 3), _cubic_weights(src - i0)):
            np.add.at(m, (rows, np.clip(i0 + tap, 0, n_in - 1)), w)
    else:
        src = _src(dst, n_in, n_out, scale, align_corners)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = src - i0
        np.add.at(m, (rows, i0), 1 - lam)
        np.add.at(m, (rows, i1), lam)
    return Tensor(m.astype(dtype))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of input (N, C, d1, ...): modes nearest, nearest-exact, linear,
    bilinear, trilinear, bicubic, area."""
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported")
    if mode not in ("nearest", "nearest-exact", "area") and mode not in _LINEAR:
        raise ValueError(f"interpolate: unknown mode {mode!r}; valid: nearest, nearest-exact, "
                         f"linear, bilinear, trilinear, bicubic, area")
    if mode in _LINEAR:
        if input.ndim - 2 != _LINEAR[mode]:
            raise ValueError(f"interpolate: mode {mode!r} expects a {_LINEAR[mode] + 2}-D input, "
                             f"got shape {tuple(input.shape)}")
        align_corners = bool(align_corners)
    elif align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if input.ndim < 3:
        raise ValueError(f"interpolate: expected input (N, C, d1, ...), got shape {tuple(input.shape)}")
    out_sizes, scales = _sizes(input, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        pool = adaptive_avg_pool1d if input.ndim == 3 else adaptive_avg_pool2d
        return pool(input, out_sizes)
    x = input
    nd = input.ndim
    for i, (n_out, scale) in enumerate(zip(out_sizes, scales)):
        d = 2 + i
        n_in = x.shape[d]
        if n_in == n_out and scale in (None, 1.0) and mode != "bicubic":
            continue
        m = _matrix(mode, n_in, n_out, scale, align_corners, input.dtype)
        if d == nd - 1:
            x = x @ m.T
        elif d == nd - 2:
            x = m @ x
        else:
            x = (x.transpose(d, nd - 1) @ m.T).transpose(d, nd - 1)
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- shuffles

def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r)."""
    r = upscale_factor
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle: channels {c} of input shape {tuple(input.shape)} are not "
                         f"divisible by upscale_factor**2 = {r * r}")
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W)."""
    r = downscale_factor
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"pixel_unshuffle: spatial size {(h, w)} is not divisible by "
                         f"downscale_factor {r}")
    k = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input, groups):
    """(N, g*k, *) -> channels reordered as k groups of g (torch's channel_shuffle)."""
    n, c = input.shape[:2]
    if c % groups:
        raise ValueError(f"channel_shuffle: channels {c} not divisible by groups {groups}")
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


native_channel_shuffle = channel_shuffle
