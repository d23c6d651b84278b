"""linear_cross_entropy and LinearCrossEntropyOptions (torch 2.13's names and rules).

    linear_cross_entropy(input, linear_weight, target, **kw) == cross_entropy(linear(input,
    linear_weight, linear_bias), target, **kw)

options=None takes exactly that reference path (composed). A LinearCrossEntropyOptions selects
the chunked primitive (distbp/ops/linear_ce.py), which never holds the (N, C) logits: for class-
index targets with reduction 'mean'/'sum'/'none', no label smoothing and 2-D linear_weight, as
torch's; other calls warn and take the reference path, as torch's do. The chunk size follows
torch's rules (batch_chunk_size, or chunking_method 'aspect_ratio[:k]': the next power of two of
N / ceil(C / in_features), divided by k; 'auto' is 'aspect_ratio:2' on the CPU). acc_dtype is the
dtype the chunks are computed in (default: the input's). acc_policy is validated but has no
choice to make here: numpy computes every chunk one way (torch's 'accurate').
"""
import dataclasses
import warnings

import numpy as np

from distbp.ops.linear_ce import LinearCrossEntropy

from ._utils import data
from .conv import linear
from .loss import cross_entropy

_POLICIES = ("accurate", "balanced", "compact", "auto")


def _ceil_div(a, b):
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """Configuration of the chunked linear_cross_entropy (pass an instance to opt in)."""
    allow_retain_graph: bool = False
    batch_chunk_size: int = None
    chunking_method: str = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        if self.acc_policy not in _POLICIES:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = self.chunking_method.partition(":")
            factor = factor if sep else "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        if not (self.batch_chunk_size is None
                or (isinstance(self.batch_chunk_size, int) and self.batch_chunk_size > 0)):
            raise ValueError(f"batch_chunk_size must be positive int or None, got "
                             f"{self.batch_chunk_size!r}")
        if self.acc_dtype is not None and np.dtype(self.acc_dtype) not in (
                np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"acc_dtype must be one of None, float16, float32, float64, got "
                             f"{self.acc_dtype!r}")

    def _chunk_rows(self, num_batches, in_features, num_classes):
        """Rows per chunk for this call (torch's _adjust / _compute_batch_chunk_size)."""
        method = self.chunking_method
        if method == "auto":
            method = None if self.batch_chunk_size is not None else "aspect_ratio:2"
        rows = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size, num_batches)
        if method is not None:
            factor = int(method.split(":", 1)[1]) if ":" in method else 1
            target = _ceil_div(num_batches, _ceil_div(num_classes, in_features))
            computed = min((1 << (target - 1).bit_length()) // factor, num_batches)
            if self.batch_chunk_size is not None and self.batch_chunk_size != computed:
                raise ValueError(f"batch_chunk_size (={self.batch_chunk_size}) and chunking_method "
                                 f"('{method}') give different chunk sizes ({self.batch_chunk_size} "
                                 f"vs {computed}); pass only one.")
            rows = computed
        return max(1, rows)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction="mean", ignore_index=None, label_smoothing=0.0, options=None):
    """input (N, in) or (in,), linear_weight (C, *out_features, in), target as cross_entropy's for
    logits (N, C, *out_features)."""
    if input.ndim not in (1, 2):
        raise ValueError(f"linear_cross_entropy: expected input with dimensionality 1 or 2, got "
                         f"{input.ndim}")
    if linear_weight.ndim < 2 or linear_weight.shape[-1] != input.shape[-1]:
        raise ValueError(f"linear_cross_entropy: linear_weight of shape {tuple(linear_weight.shape)} "
                         f"must be (C, *out_features, {input.shape[-1]}) for input of shape "
                         f"{tuple(input.shape)}")
    batch, in_features = tuple(input.shape[:-1]), input.shape[-1]
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes,) + out_features:
        raise ValueError(f"linear_cross_entropy: expected linear_bias of shape "
                         f"{(num_classes,) + out_features}, got {tuple(linear_bias.shape)}")
    if out_features and not batch:
        raise ValueError(f"linear_cross_entropy: K-dimensional loss (linear_weight "
                         f"{tuple(linear_weight.shape)}) needs batched input (N, {in_features})")
    logits_shape = batch + (num_classes,) + out_features
    t = np.asarray(data(target))
    probabilities = t.shape == logits_shape
    if probabilities and ignore_index is not None:
        raise ValueError("linear_cross_entropy: ignore_index cannot be specified when target "
                         "contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    chunked = (reduction in ("mean", "sum", "none") and label_smoothing == 0.0
               and t.dtype.kind in "iu" and not out_features)
    if options is not None and not chunked:
        warnings.warn("linear_cross_entropy: ``options`` ignored; chunked path needs reduction in "
                      "{'mean','sum','none'}, label_smoothing == 0, integer class targets, "
                      f"out_features == (). Got reduction={reduction!r}, label_smoothing="
                      f"{label_smoothing}, target dtype {t.dtype}, out_features={out_features}.",
                      stacklevel=2)
    if options is not None and chunked:
        x, tt = (input, t) if batch else (input.unsqueeze(0), t.reshape(1))
        out = LinearCrossEntropy.apply(
            x, linear_weight, linear_bias, target=tt,
            class_weight=None if weight is None else data(weight), ignore_index=ignore_index,
            reduction=reduction, chunk=options._chunk_rows(x.shape[0], in_features, num_classes),
            acc_dtype=options.acc_dtype)
        return out if batch or reduction != "none" else out.squeeze(0)
    w2, b2 = linear_weight, linear_bias
    if out_features:
        w2 = linear_weight.reshape(-1, in_features)
        b2 = None if linear_bias is None else linear_bias.reshape(-1)
    logits = linear(input, w2, b2).reshape(logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction,
                         ignore_index=ignore_index, label_smoothing=label_smoothing)
