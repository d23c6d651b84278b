"""Dropout variants. Masks come from distbp.random.uniform_rows, so inside
distbp.random.per_sample each sample's mask depends on its global index, not on the rank that
holds it (world-size-invariant training). inplace=True writes the result into the input with
torch's in-place rules (Tensor._write)."""
import numpy as np

from distbp import random as _random


def _check(p, what):
    if not 0 <= p <= 1:
        raise ValueError(f"{what} probability has to be between 0 and 1, but got {p}")


def _masked(input, p, shape):
    u = _random.uniform_rows(shape, input.dtype)
    mask = (u >= p).astype(input.dtype) * np.asarray(1 / (1 - p), dtype=input.dtype)
    return input * mask


def _maybe_inplace(input, inplace, fn):
    return input._write(fn) if inplace else fn(input)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p)."""
    _check(p, "dropout")
    if not training or p == 0:
        return input
    if p == 1:
        return _maybe_inplace(input, inplace, lambda x: x * 0)
    return _maybe_inplace(input, inplace, lambda x: _masked(x, p, x.shape))


def _feature_dropout(input, p, training, batched_ndim, what, inplace=False):
    """Zero whole channels: the mask has shape (N, C, 1, ...) (or (C, 1, ...) unbatched)."""
    _check(p, what)
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise ValueError(f"{what}: expected a {batched_ndim - 1}-D or {batched_ndim}-D input, got "
                         f"shape {tuple(input.shape)}")
    if not training or p == 0:
        return input
    if p == 1:
        return _maybe_inplace(input, inplace, lambda x: x * 0)
    lead = 2 if input.ndim == batched_ndim else 1
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    return _maybe_inplace(input, inplace, lambda x: _masked(x, p, shape))


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, 3, "dropout1d", inplace)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, 4, "dropout2d", inplace)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, 5, "dropout3d", inplace)


_SELU_ALPHA_PRIME = -1.7580993408473766  # -scale * alpha of selu: the value dropped units take


def _alpha(input, p, shape):
    """Alpha dropout: dropped units take selu's negative saturation, then an affine map restores
    zero mean and unit variance (Klambauer et al.; torch's constants)."""
    keep = (_random.uniform_rows(shape, input.dtype) >= p).astype(input.dtype)
    a = (1 / np.sqrt((_SELU_ALPHA_PRIME ** 2 * p + 1) * (1 - p)))
    b = -a * _SELU_ALPHA_PRIME * p
    return input * (keep * a) + (_SELU_ALPHA_PRIME * a * (1 - keep) + b).astype(input.dtype)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check(p, "alpha_dropout")
    if not training or p == 0:
        return input
    if p == 1:
        return _maybe_inplace(input, inplace, lambda x: x * 0)
    return _maybe_inplace(input, inplace, lambda x: _alpha(x, p, x.shape))


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check(p, "feature_alpha_dropout")
    if not training or p == 0:
        return input
    if p == 1:
        return _maybe_inplace(input, inplace, lambda x: x * 0)
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _maybe_inplace(input, inplace, lambda x: _alpha(x, p, shape))
