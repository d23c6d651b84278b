"""Losses with torch.nn.functional's signatures, composed from Tensor ops and log_softmax.

The deprecated size_average/reduce flags behave as in torch (they override `reduction`, with
torch's warning). Elementwise losses raise on an input/target shape mismatch (torch warns and
broadcasts; see _utils.same_shape).
"""
import numpy as np

from distbp.ops.pointwise import Pointwise
from distbp.tensor import Tensor, where

from ._utils import as_tensor, data, legacy_reduction, reduce_loss, same_shape
from .activation import log_softmax


# ---------------------------------------------------------------- classification

def _class_targets(input, target, what):
    t = data(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{what}: target must hold integer class indices, got dtype {t.dtype}")
    want = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.ndim > 1 else ()
    if t.shape != want:
        raise ValueError(f"{what}: input of shape {tuple(input.shape)} does not match target "
                         f"of shape {t.shape} (expected target {want})")
    return t


def _weighted_nll(logp, t, weight, ignore_index, label_smoothing, reduction, what):
    """-(logp * q).sum(class dim) with q the (smoothed, weighted) target distribution.

    logp (N, C, d...) or (C,), t integer (N, d...) or (). Mean divides by the summed weight of the
    non-ignored targets, like torch."""
    unbatched = logp.ndim == 1
    if unbatched:
        logp, t = logp.unsqueeze(0), t[None]
    c = logp.shape[1]
    valid = t != ignore_index
    tv = np.where(valid, t, 0)
    if tv.size and (tv.min() < 0 or tv.max() >= c):
        raise IndexError(f"{what}: target out of range [0, {c}) (min {tv.min()}, max {tv.max()})")
    w = np.ones(c, dtype=logp.dtype) if weight is None else data(weight).astype(logp.dtype)
    if w.shape != (c,):
        raise ValueError(f"{what}: weight of shape {w.shape} does not match {c} classes")
    q = np.eye(c, dtype=logp.dtype)[tv] * w[tv][..., None]            # (N, d..., C)
    if label_smoothing:
        q = q * (1 - label_smoothing) + (label_smoothing / c) * w
    q *= valid[..., None]
    if logp.ndim > 2:
        q = np.moveaxis(q, -1, 1)                                      # (N, C, d...)
    loss = -(logp * q).sum(1)                                          # (N, d...)
    if reduction == "mean":
        return loss.sum() / float((w[tv] * valid).sum())
    loss = reduce_loss(loss, reduction, what)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """input (N, C) or (N, C, d1, ...) logits (or (C,)); target class indices (N, d1, ...) or
    class probabilities of input's shape."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    cdim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, cdim)
    t = data(target)
    if t.dtype.kind == "f":
        return _soft_cross_entropy(logp, target, weight, label_smoothing, reduction, cdim)
    t = _class_targets(input, target, "cross_entropy")
    return _weighted_nll(logp, t, weight, ignore_index, label_smoothing, reduction, "cross_entropy")


def _soft_cross_entropy(logp, target, weight, label_smoothing, reduction, cdim):
    """Class-probability targets: -(w_c * q_c * logp_c).sum(C); mean divides by numel / C."""
    if tuple(np.shape(data(target))) != tuple(logp.shape):
        raise ValueError(f"cross_entropy: probability target of shape {np.shape(data(target))} must "
                         f"match input of shape {tuple(logp.shape)}")
    c = logp.shape[cdim]
    q = as_tensor(target)
    if label_smoothing:
        q = q * (1 - label_smoothing) + label_smoothing / c
    term = logp * q
    if weight is not None:
        term = term * as_tensor(weight).reshape((c,) + (1,) * (logp.ndim - cdim - 1))
    loss = -term.sum(cdim)
    if reduction == "mean":
        return loss.sum() / (logp.data.size // c)
    return reduce_loss(loss, reduction, "cross_entropy")


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """input (N, C, d...) log-probabilities, target (N, d...) class indices."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    t = _class_targets(input, target, "nll_loss")
    return _weighted_nll(input, t, weight, ignore_index, 0.0, reduction, "nll_loss")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 like torch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    same_shape(input, target, "binary_cross_entropy")
    x = input.data
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    t = as_tensor(target)
    loss = -(t * input.log().clamp(min=-100) + (1 - t) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """(1 - t) x - (1 + (pos_weight - 1) t) logsigmoid(x): stable for any logit."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    same_shape(input, target, "binary_cross_entropy_with_logits")
    t = as_tensor(target)
    log_sig = Pointwise.apply(input, op="logsigmoid")
    if pos_weight is not None:
        loss = (1 - t) * input - ((as_tensor(pos_weight) - 1) * t + 1) * log_sig
    else:
        loss = (1 - t) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction, "binary_cross_entropy_with_logits")


# ---------------------------------------------------------------- regression

def _weighted(loss, weight, reduction, what, mean_by_weight=True):
    """torch 2.x's optional elementwise weight of mse/l1 (mean = sum / sum(w)) and huber (mean)."""
    if weight is None:
        return reduce_loss(loss, reduction, what)
    if tuple(weight.shape) != tuple(loss.shape):
        raise ValueError(f"{what}: weight of shape {tuple(weight.shape)} must match input of shape "
                         f"{tuple(loss.shape)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / as_tensor(weight).sum()
    return reduce_loss(loss, reduction, what)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    same_shape(input, target, "mse_loss")
    diff = input - target
    return _weighted(diff * diff, weight, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    same_shape(input, target, "l1_loss")
    return _weighted((input - target).abs(), weight, reduction, "l1_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta (beta 0: plain l1)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    same_shape(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = (input - target).abs()
    if beta == 0:
        return reduce_loss(d, reduction, "smooth_l1_loss")
    loss = where(d.data < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return reduce_loss(loss, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d**2 where |d| < delta, else delta (|d| - 0.5 delta)."""
    same_shape(input, target, "huber_loss")
    d = (input - target).abs()
    loss = where(d.data < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, "huber_loss", mean_by_weight=False)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target * (log target - input), input being log-probabilities; reduction 'batchmean' divides
    the sum by the batch size (the mathematically correct KL); 'mean' by the element count."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce, reduction)
    t = as_tensor(target)
    if log_target:
        loss = t.exp() * (t - input)
    else:
        positive = t.data > 0
        log_t = where(positive, t, Tensor(np.ones((), dtype=t.dtype))).log()
        loss = where(positive, t * log_t, Tensor(np.zeros((), dtype=t.dtype))) - t * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return reduce_loss(loss, reduction, "kl_div")


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    reduction = legacy_reduction(size_average, reduce, reduction)
    t = as_tensor(target)
    loss = input.exp() - t * input if log_input else input - t * (input + eps).log()
    if full:  # Stirling's approximation of log(target!), for targets > 1
        big = t.data > 1
        one = Tensor(np.ones((), dtype=loss.dtype))
        ts = where(big, t, one)
        stirling = ts * ts.log() - ts + 0.5 * (ts * (2 * np.pi)).log()
        loss = loss + where(big, stirling, one * 0)
    return reduce_loss(loss, reduction, "poisson_nll_loss")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log var + (input - target)**2 / var) (+ 0.5 log 2 pi), var clamped at eps."""
    if isinstance(var, (int, float)):
        var = Tensor(np.full(input.shape, float(var), dtype=input.dtype))
    if (var.data < 0).any():
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and
                  sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ValueError(f"gaussian_nll_loss: var of shape {tuple(var.shape)} is of incorrect "
                             f"size for input of shape {tuple(input.shape)}")
    # clamp without blocking the grad where var < eps (torch clamps under no_grad)
    var = var + Tensor(np.maximum(var.data, eps) - var.data)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return reduce_loss(loss, reduction, "gaussian_nll_loss")


# ---------------------------------------------------------------- margins and embeddings

def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(x1, x2) for target 1, max(0, cos(x1, x2) - margin) for target -1."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    eps = 1e-12  # torch's EPSILON in cosine_embedding_loss
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    mag = ((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps)
    cos = prod / mag.sqrt()
    t = data(target)
    zero = Tensor(np.zeros((), dtype=cos.dtype))
    loss = where(t == 1, 1 - cos, zero) + where(t == -1, (cos - margin).clamp(min=0), zero)
    return reduce_loss(loss, reduction, "cosine_embedding_loss")


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    reduction = legacy_reduction(size_average, reduce, reduction)
    loss = (-as_tensor(target) * (input1 - input2) + margin).clamp(min=0)
    return reduce_loss(loss, reduction, "margin_ranking_loss")


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    reduction = legacy_reduction(size_average, reduce, reduction)
    t = data(target)
    zero = Tensor(np.zeros((), dtype=input.dtype))
    loss = where(t != 1, (margin - input).clamp(min=0), zero) + where(t != -1, input, zero)
    return reduce_loss(loss, reduction, "hinge_embedding_loss")


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-t x))."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    loss = Pointwise.apply(-as_tensor(target) * input, op="softplus", beta=1.0, threshold=np.inf)
    return reduce_loss(loss, reduction, "soft_margin_loss")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    reduction = legacy_reduction(size_average, reduce, reduction)
    t = as_tensor(target)
    loss = -(t * Pointwise.apply(input, op="logsigmoid") +
             (1 - t) * Pointwise.apply(-input, op="logsigmoid"))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(-1) / input.shape[-1]
    return reduce_loss(loss, reduction, "multilabel_soft_margin_loss")


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """sum over j != y of max(0, margin - x[y] + x[j]) ** p / C (times weight[y])."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    x = input.unsqueeze(0) if input.ndim == 1 else input
    t = np.atleast_1d(data(target))
    n, c = x.shape
    onehot = np.eye(c, dtype=bool)[t]
    xy = x[np.arange(n), t].unsqueeze(1)                              # (N, 1)
    z = (x - xy + margin).clamp(min=0)
    z = z if p == 1 else z * z
    z = where(onehot, Tensor(np.zeros((), dtype=x.dtype)), z)
    if weight is not None:
        z = z * as_tensor(weight)[t].unsqueeze(1)
    loss = z.sum(1) / c
    if input.ndim == 1:
        loss = loss.squeeze(0)
    return reduce_loss(loss, reduction, "multi_margin_loss")


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    from .distance import pairwise_distance
    reduction = legacy_reduction(size_average, reduce, reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        from distbp.tensor import minimum
        d_neg = minimum(d_neg, d_swap)
    loss = (d_pos - d_neg + margin).clamp(min=0)
    return reduce_loss(loss, reduction, "triplet_margin_loss")


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """sum over target classes j and non-target classes k of max(0, 1 - (x[j] - x[k])) / C;
    target (N, C) holds class indices, the list ending at the first -1."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    x = input.unsqueeze(0) if input.ndim == 1 else input
    t = np.atleast_2d(data(target)).astype(np.int64)
    if t.shape != tuple(x.shape):
        raise ValueError(f"multilabel_margin_loss: target of shape {t.shape} must match input of "
                         f"shape {tuple(input.shape)}")
    n, c = x.shape
    counts = np.zeros((n, c), dtype=x.dtype)                        # occurrences of each target
    for i in range(n):
        row = t[i]
        stop = np.flatnonzero(row < 0)
        for j in row[:stop[0] if stop.size else c]:
            counts[i, j] += 1
    is_target = counts > 0
    pair = counts[:, :, None] * ~is_target[:, None, :]             # (N, j, k) weights
    hinge = (1 - x.unsqueeze(2) + x.unsqueeze(1)).clamp(min=0)     # 1 - (x_j - x_k)
    loss = (hinge * Tensor(pair.astype(x.dtype))).sum((1, 2)) / c
    if input.ndim == 1:
        loss = loss.squeeze(0)
    return reduce_loss(loss, reduction, "multilabel_margin_loss")


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    from .distance import pairwise_distance
    from distbp.tensor import minimum
    dist = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, dist(positive, negative))
    return reduce_loss((d_pos - d_neg + margin).clamp(min=0), reduction,
                       "triplet_margin_with_distance_loss")
