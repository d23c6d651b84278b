"""Evaluation metrics from sufficient statistics, so each rank evaluates a shard and the sums are
all-reduced: a confusion matrix gives accuracy and macro-F1; per-class score histograms give the
one-vs-rest average precision; summed negative log-likelihoods give bits per character; sums of
targets, squared targets, squared and absolute errors give MSE, MAE and R^2; per-label true/false
positive and false negative counts give multi-label F1. (distbp/train/tasks.py picks them.)"""
import math

import numpy as np

AP_BINS = 1000  # score histogram resolution for average precision (probabilities in [0, 1])


def confusion(pred, target, num_classes):
    """(num_classes, num_classes) counts, rows = true class, columns = predicted."""
    idx = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def score_histograms(probs, target, num_classes):
    """(2, C, AP_BINS): histograms of class-c probability for positives (0) and negatives (1)."""
    return label_histograms(probs, np.arange(num_classes)[None, :] == target[:, None])


def label_histograms(probs, positive):
    """(2, C, AP_BINS) from probs (N, C) and a positive mask (N, C): one-vs-rest or multi-label."""
    probs = np.nan_to_num(probs, nan=0.0, posinf=1.0, neginf=0.0)       # a diverged model
    bins = np.clip((probs * AP_BINS).astype(np.int64), 0, AP_BINS - 1)   # (N, C)
    out = np.zeros((2, probs.shape[1], AP_BINS), dtype=np.int64)
    for c in range(probs.shape[1]):
        out[0, c] = np.bincount(bins[positive[:, c], c], minlength=AP_BINS)
        out[1, c] = np.bincount(bins[~positive[:, c], c], minlength=AP_BINS)
    return out


def accuracy(conf):
    total = conf.sum()
    return float(np.trace(conf) / total) if total else 0.0


def macro_f1(conf):
    tp = np.diag(conf).astype(float)
    precision_den = conf.sum(axis=0)
    recall_den = conf.sum(axis=1)
    f1 = np.where(precision_den + recall_den > 0,
                  2 * tp / np.maximum(precision_den + recall_den, 1), 0.0)
    present = recall_den > 0
    return float(f1[present].mean()) if present.any() else 0.0


def mean_average_precision(hist):
    """One-vs-rest AP per class from score histograms, averaged over classes that occur."""
    aps = []
    for c in range(hist.shape[1]):
        pos, neg = hist[0, c][::-1], hist[1, c][::-1]          # descending score
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        if tp[-1] == 0:
            continue
        precision = tp / np.maximum(tp + fp, 1)
        aps.append(float((precision * pos).sum() / tp[-1]))   # precision at each positive
    return float(np.mean(aps)) if aps else 0.0


def bits_per_char(nll_sum, count):
    return float(nll_sum / max(count, 1) / math.log(2))


# -- regression --------------------------------------------------------------------------------------
def regression_metrics(count, sum_y, sum_y2, sse, sae):
    """MSE and MAE over all target values; R^2 per target (1 - SSE / total sum of squares around
    the target's mean), averaged over the targets as sklearn's r2_score does."""
    count = max(float(count), 1.0)
    k = len(sse)
    sst = sum_y2 - sum_y * sum_y / count                       # (k,)
    r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.where(sse > 0, 0.0, 1.0))
    return {"mse": float(sse.sum() / (count * k)), "mae": float(sae.sum() / (count * k)),
            "r2": float(r2.mean())}


# -- multi-label -------------------------------------------------------------------------------------
def label_counts(predicted, positive):
    """(3, L) int counts of true positives, false positives, false negatives per label."""
    return np.stack([(predicted & positive).sum(0), (predicted & ~positive).sum(0),
                     (~predicted & positive).sum(0)]).astype(np.int64)


def label_f1(counts):
    """(L,) F1 per label (0 where a label is neither predicted nor present, as sklearn's
    zero_division=0)."""
    tp, fp, fn = counts.astype(float)
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)


def micro_f1(counts):
    tp, fp, fn = counts.sum(1).astype(float)
    return float(2 * tp / (2 * tp + fp + fn)) if 2 * tp + fp + fn else 0.0
