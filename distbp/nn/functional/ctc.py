"""ctc_loss: the Connectionist Temporal Classification loss, composed (no backward of its own).

The forward (alpha) recursion of Graves et al. 2006 in log space over the extended label
sequence l' = (blank, l1, blank, l2, ..., lL, blank) of length S' = 2L + 1, one step per time
frame, vectorised over the batch and the S' positions:
    alpha_0(s)  = lp_0(l'_s)                     for s < 2 (s = 1 only if L > 0)
    alpha_t(s)  = lp_t(l'_s) + logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2))
                  (the s-2 term only where l'_s is a label different from l'_{s-2})
    loss        = -logsumexp(alpha_{T-1}(2L), alpha_{T-1}(2L - 1))
Frames past a sample's input length leave its alpha unchanged. Impossible states hold a large
finite negative number instead of -inf so that no gradient is inf * 0; whether a sample can be
aligned at all is decided exactly (input length >= target length + repeated neighbours) and an
impossible one gets loss inf (0 with zero_infinity, and no gradient either way).

The gradient is autograd's, the true derivative of the loss with respect to log_probs. torch's
ctc_loss returns exp(log_probs) - occupancy instead, which equals it after a log_softmax backward
(the usual case, log_probs = log_softmax(logits)): gradients with respect to the logits agree.
"""
import numpy as np

from distbp.tensor import Tensor, where

from ._utils import data

_IMPOSSIBLE = -1e30  # exp(_IMPOSSIBLE - anything reachable) == 0 in float32 and float64


def _lengths(v, n, what):
    arr = np.asarray(data(v)).reshape(-1).astype(np.int64)
    if arr.shape != (n,):
        raise ValueError(f"ctc_loss: {what} must have one entry per sample ({n}), got shape "
                         f"{tuple(np.shape(data(v)))}")
    return arr


def _targets(targets, target_lengths, n):
    """Padded (N, S) or concatenated 1-D targets -> a list of N int arrays."""
    t = np.asarray(data(targets)).astype(np.int64)
    if t.ndim == 2:
        if t.shape[0] != n or (target_lengths > t.shape[1]).any():
            raise ValueError(f"ctc_loss: padded targets of shape {t.shape} do not fit {n} samples "
                             f"with target_lengths {target_lengths.tolist()}")
        return [t[i, :target_lengths[i]] for i in range(n)]
    if t.ndim != 1 or t.size != target_lengths.sum():
        raise ValueError(f"ctc_loss: targets must be (N, S) or 1-D of length sum(target_lengths) "
                         f"= {target_lengths.sum()}, got shape {t.shape}")
    return np.split(t, np.cumsum(target_lengths)[:-1])


def _lse3(a, b, c):
    m = np.maximum(np.maximum(a.data, b.data), c.data)             # a constant shift: exact grads
    return ((a - m).exp() + (b - m).exp() + (c - m).exp()).log() + m


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """log_probs (T, N, C) (or (T, C) unbatched) log-softmax outputs, targets (N, S) padded or 1-D
    concatenated, lengths per sample -> loss ('mean': each divided by its target length, then
    averaged; 'sum'; 'none': (N,))."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"ctc_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise ValueError(f"ctc_loss: expected log_probs (T, N, C) or (T, C), got shape "
                         f"{tuple(log_probs.shape)}")
    if unbatched and np.ndim(data(targets)) == 1:
        targets = np.asarray(data(targets))[None]
    tt, n, c = lp.shape
    if not 0 <= blank < c:
        raise ValueError(f"ctc_loss: blank={blank} is not a class index (log_probs has {c} classes)")
    in_len = _lengths(input_lengths, n, "input_lengths")
    tgt_len = _lengths(target_lengths, n, "target_lengths")
    if (in_len > tt).any() or (in_len < 0).any():
        raise ValueError(f"ctc_loss: input_lengths {in_len.tolist()} must be between 0 and the "
                         f"{tt} frames of log_probs")
    seqs = _targets(targets, tgt_len, n)
    if any(((s < 0) | (s >= c)).any() for s in seqs):
        raise ValueError(f"ctc_loss: targets hold class indices outside [0, {c})")
    big_l = int(tgt_len.max()) if n else 0
    width = 2 * big_l + 1
    ext = np.full((n, width), blank, dtype=np.int64)                 # l': blank, l1, blank, ...
    for i, s in enumerate(seqs):
        ext[i, 1:2 * len(s):2] = s
    skip = np.zeros((n, width), dtype=bool)                          # s-2 -> s allowed
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    valid = np.arange(width)[None, :] < (2 * tgt_len + 1)[:, None]
    em = lp[:, np.arange(n)[:, None], ext]                           # (T, N, S') emissions
    neg = Tensor(np.full((n, width), _IMPOSSIBLE, dtype=lp.dtype))
    start = valid & (np.arange(width)[None, :] < 2)
    alpha = where(start, em[0], neg)
    for t in range(1, tt):
        shift1 = where(np.arange(width)[None, :] >= 1, alpha.roll(1, 1), neg)
        shift2 = where(skip, alpha.roll(2, 1), neg)
        step = where(valid, em[t] + _lse3(alpha, shift1, shift2), neg)
        alpha = where((t < in_len)[:, None], step, alpha)
    rows = np.arange(n)
    last_blank = alpha[rows, 2 * tgt_len]
    last_label = where(tgt_len > 0, alpha[rows, np.maximum(2 * tgt_len - 1, 0)],
                       Tensor(np.full(n, _IMPOSSIBLE, dtype=lp.dtype)))
    m = np.maximum(last_blank.data, last_label.data)
    loss = -(((last_blank - m).exp() + (last_label - m).exp()).log() + m)
    repeats = np.array([int((s[1:] == s[:-1]).sum()) for s in seqs], dtype=np.int64)
    feasible = (in_len >= tgt_len + repeats) & (in_len > 0)
    if not feasible.all():  # no alignment: inf (0 with zero_infinity); no frames, no labels: 0
        fixed = np.where((in_len == 0) & (tgt_len == 0), 0.0, 0.0 if zero_infinity else np.inf)
        loss = where(feasible, loss, Tensor(fixed.astype(lp.dtype)))
    if reduction == "mean":
        loss = (loss / Tensor(np.maximum(tgt_len, 1).astype(lp.dtype))).mean()
    elif reduction == "sum":
        loss = loss.sum()
    elif unbatched:
        loss = loss.squeeze(0)
    return loss
