import math

import numpy as np
import pytest

from distbp.train import metrics as M


def test_accuracy_and_macro_f1_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 5, 300))
    conf = M.confusion(pred, y, 5)
    assert M.accuracy(conf) == pytest.approx(sk.accuracy_score(y, pred))
    assert M.macro_f1(conf) == pytest.approx(sk.f1_score(y, pred, average="macro"))


def test_confusion_sums_across_shards():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    whole = M.confusion(pred, y, 3)
    parts = M.confusion(pred[:37], y[:37], 3) + M.confusion(pred[37:], y[37:], 3)
    assert (whole == parts).all()


def test_mean_average_precision_close_to_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 500)
    logits = rng.normal(size=(500, 4)) + 2.0 * np.eye(4)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ours = M.mean_average_precision(M.score_histograms(probs, y, 4))
    ref = np.mean([sk.average_precision_score(y == c, probs[:, c]) for c in range(4)])
    assert ours == pytest.approx(ref, abs=0.01)
    perfect = M.mean_average_precision(M.score_histograms(np.eye(4)[y], y, 4))
    assert perfect == pytest.approx(1.0)


def test_bits_per_char():
    assert M.bits_per_char(100 * math.log(2), 100) == pytest.approx(1.0)
