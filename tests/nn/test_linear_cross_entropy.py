"""F.linear_cross_entropy (reference and chunked paths), nn.LinearCrossEntropyLoss and
nn.LinearCrossEntropyOptions against torch 2.13's in float64: outputs, every input grad, finite
differences; the chunked primitive agrees with the reference path and follows torch's chunk rules."""
import numpy as np
import pytest
import torch

import distbp
import distbp.nn.functional as F
from distbp import nn
from tests.nn.torch_compare import compare
from tests.opcheck import DISTBP, check, const

rng = np.random.default_rng(0)
TARGET = const(np.array([0, 3, 1, 4, 2, 1, 3]))
IGNORED = const(np.array([0, 3, -100, 4, 2, -100, 3]))
CLASS_W = const(rng.uniform(0.5, 2, 5))


def _lce(chunked, **kw):
    def fn(m, x, w, b, t, cw=None):
        opts = None
        if chunked:
            opts = (nn if m is DISTBP else torch.nn).LinearCrossEntropyOptions(batch_chunk_size=3)
        return m.F.linear_cross_entropy(x, w, t, linear_bias=b, weight=cw, options=opts, **kw)
    return fn


CASES = [(f"{'chunked' if ch else 'reference'}_{red}{'_weighted_ignore' if wt else ''}",
          _lce(ch, reduction=red, **({"ignore_index": -100} if wt else {})),
          (7, 4), (5, 4), (5,), IGNORED if wt else TARGET, *([CLASS_W] if wt else []))
         for ch in (False, True) for red in ("mean", "sum", "none") for wt in (False, True)]
CASES += [
    ("label_smoothing", lambda m, x, w, t: m.F.linear_cross_entropy(x, w, t, label_smoothing=0.1),
     (6, 4), (5, 4), const(np.array([0, 3, 1, 4, 2, 1]))),
    ("k_dimensional", lambda m, x, w, b, t: m.F.linear_cross_entropy(x, w, t, linear_bias=b),
     (6, 4), (5, 2, 4), (5, 2), const(rng.integers(0, 5, (6, 2)))),
    ("probabilities", lambda m, x, w, t: m.F.linear_cross_entropy(x, w, t), (3, 4), (5, 4),
     const(rng.dirichlet(np.ones(5), size=3))),
    ("unbatched_chunked", lambda m, x, w, t: m.F.linear_cross_entropy(
        x, w, t, options=(nn if m is DISTBP else torch.nn).LinearCrossEntropyOptions()), (4,), (5, 4),
     const(np.array(2))),
]


@pytest.mark.parametrize("name,fn,specs", [(c[0], c[1], c[2:]) for c in CASES], ids=[c[0] for c in CASES])
def test_linear_cross_entropy_matches_torch(name, fn, specs):
    check(fn, *specs)


def test_chunked_path_is_the_primitive_and_equals_the_reference():
    x = distbp.tensor(rng.standard_normal((50, 8)), requires_grad=True)
    w = distbp.tensor(rng.standard_normal((300, 8)), requires_grad=True)
    t = rng.integers(0, 300, 50)
    ref = F.linear_cross_entropy(x, w, t)
    ref.backward()
    gx, gw = x.grad.copy(), w.grad.copy()
    x.grad = w.grad = None
    out = F.linear_cross_entropy(x, w, t, options=nn.LinearCrossEntropyOptions(batch_chunk_size=7))
    assert type(out._ctx).__name__ == "LinearCrossEntropy"
    assert out._ctx.saved[6] == 7                             # rows per chunk
    out.backward()
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-12)
    np.testing.assert_allclose(x.grad, gx, atol=1e-12)
    np.testing.assert_allclose(w.grad, gw, atol=1e-12)


@pytest.mark.parametrize("n, in_features, classes, kw", [
    (64, 8, 300, {}), (1000, 16, 50000, {}), (7, 32, 10, {}), (100, 8, 300, {"chunking_method": "aspect_ratio"}),
    (100, 8, 300, {"chunking_method": "aspect_ratio:4"}), (100, 8, 300, {"batch_chunk_size": 9}),
])
def test_chunk_rows_follow_torchs_rules(n, in_features, classes, kw):
    ours = nn.LinearCrossEntropyOptions(**kw)._chunk_rows(n, in_features, classes)
    theirs = torch.nn.LinearCrossEntropyOptions(**kw)._adjust(n, in_features, classes, torch.float64)
    assert ours == theirs.batch_chunk_size


def test_options_are_validated_and_unsupported_calls_warn():
    for bad in ({"acc_policy": "fast"}, {"chunking_method": "rows:2"}, {"batch_chunk_size": 0},
                {"acc_dtype": np.int32}):
        with pytest.raises(ValueError):
            nn.LinearCrossEntropyOptions(**bad)
    with pytest.raises(ValueError, match="give different chunk sizes"):
        nn.LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio")._chunk_rows(100, 8, 300)
    x, w = distbp.tensor(rng.standard_normal((4, 3))), distbp.tensor(rng.standard_normal((5, 3)))
    with pytest.warns(UserWarning, match="options`` ignored"):
        F.linear_cross_entropy(x, w, np.array([0, 1, 2, 3]), label_smoothing=0.2,
                               options=nn.LinearCrossEntropyOptions())
    with pytest.raises(ValueError, match="ignore_index cannot be specified"):
        F.linear_cross_entropy(x, w, rng.dirichlet(np.ones(5), size=4), ignore_index=1)
    with pytest.raises(ValueError, match="out of bounds"):
        F.linear_cross_entropy(x, w, np.array([0, 1, 2, 9]), options=nn.LinearCrossEntropyOptions())


@pytest.mark.parametrize("kw", [{}, {"bias": True, "out_features": (2,), "label_smoothing": 0.1},
                                {"bias": True, "options": "chunked", "ignore_index": 1}])
def test_linear_cross_entropy_loss_module_matches_torch(kw):
    kw_t = dict(kw)
    if kw.get("options"):
        kw, kw_t = dict(kw, options=nn.LinearCrossEntropyOptions(batch_chunk_size=2)), \
            dict(kw, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2))
    ours, theirs = nn.LinearCrossEntropyLoss(4, 5, **kw), torch.nn.LinearCrossEntropyLoss(4, 5, **kw_t)
    target = rng.integers(0, 5, (6,) + tuple(kw.get("out_features", ())))

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = ours

        def forward(self, x):
            return self.m(x, target)

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = theirs

        def forward(self, x):
            return self.m(x, torch.tensor(target))

    compare(Ours(), Theirs(), rng.standard_normal((6, 4)))
