"""Evaluation metrics from sufficient statistics, so each rank evaluates a shard and the sums are
all-reduced: a confusion matrix gives accuracy and macro-F1; per-class score histograms give the
one-vs-rest average precision; summed negative log-likelihoods give bits per character."""
import math

import numpy as np

AP_BINS = 1000  # score histogram resolution for average precision (probabilities in [0, 1])


def confusion(pred, target, num_classes):
    """(num_classes, num_classes) counts, rows = true class, columns = predicted."""
    idx = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def score_histograms(probs, target, num_classes):
    """(2, C, AP_BINS): histograms of class-c probability for positives (0) and negatives (1)."""
    probs = np.nan_to_num(probs, nan=0.0, posinf=1.0, neginf=0.0)       # a diverged model
    bins = np.clip((probs * AP_BINS).astype(np.int64), 0, AP_BINS - 1)   # (N, C)
    pos = np.arange(num_classes)[None, :] == target[:, None]              # (N, C)
    out = np.zeros((2, num_classes, AP_BINS), dtype=np.int64)
    for c in range(num_classes):
        out[0, c] = np.bincount(bins[pos[:, c], c], minlength=AP_BINS)
        out[1, c] = np.bincount(bins[~pos[:, c], c], minlength=AP_BINS)
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
