"""Every distbp.nn.functional op against torch.nn.functional in float64, one line per case."""
import threading

import numpy as np
import pytest
import torch

import distbp
import distbp.nn.functional as F
from distbp.nn.functional.norm import _batch_norm
from tests.opcheck import check, const

T3 = const(np.array([0, 3, 1]))
T23 = const(np.array([[0, 3, 1, 2], [1, 1, 0, 3]]))

CASES = [
    ("linear", lambda m, x, w, b: m.F.linear(x, w, b), (3, 4), (5, 4), (5,)),
    ("linear_nobias_3d", lambda m, x, w: m.F.linear(x, w), (2, 3, 4), (5, 4)),
    ("conv2d", lambda m, x, w, b: m.F.conv2d(x, w, b), (2, 3, 5, 5), (4, 3, 3, 3), (4,)),
    ("conv2d_stride_pad", lambda m, x, w: m.F.conv2d(x, w, stride=2, padding=1), (2, 2, 5, 6), (3, 2, 3, 2)),
    ("conv2d_1x1", lambda m, x, w: m.F.conv2d(x, w), (1, 3, 3, 3), (2, 3, 1, 1)),
    ("conv1d", lambda m, x, w, b: m.F.conv1d(x, w, b, padding=1), (2, 3, 7), (4, 3, 3), (4,)),
    ("conv1d_stride", lambda m, x, w: m.F.conv1d(x, w, stride=2), (2, 2, 8), (3, 2, 3)),
    ("max_pool2d", lambda m, x: m.F.max_pool2d(x, 2), (2, 3, 4, 6)),
    ("max_pool2d_stride_pad", lambda m, x: m.F.max_pool2d(x, 3, stride=2, padding=1), (1, 2, 5, 5)),
    ("avg_pool2d", lambda m, x: m.F.avg_pool2d(x, 2), (2, 3, 4, 4)),
    ("avg_pool2d_stride_pad", lambda m, x: m.F.avg_pool2d(x, 3, stride=2, padding=1), (1, 2, 5, 5)),
    ("max_pool1d", lambda m, x: m.F.max_pool1d(x, 2), (2, 3, 8)),
    ("avg_pool1d", lambda m, x: m.F.avg_pool1d(x, 3, stride=2, padding=1), (2, 3, 7)),
    ("batch_norm_train_2d", lambda m, x, w, b: m.F.batch_norm(x, None, None, w, b, training=True), (6, 3), (3,), (3,)),
    ("batch_norm_train_4d", lambda m, x, w, b: m.F.batch_norm(x, None, None, w, b, training=True), (3, 2, 3, 3), (2,), (2,)),
    ("batch_norm_train_3d_noaffine", lambda m, x: m.F.batch_norm(x, None, None, training=True), (3, 2, 5)),
    ("layer_norm", lambda m, x, w, b: m.F.layer_norm(x, (4,), w, b), (3, 4), (4,), (4,)),
    ("layer_norm_2dims", lambda m, x, w, b: m.F.layer_norm(x, (3, 4), w, b), (2, 3, 4), (3, 4), (3, 4)),
    ("layer_norm_noaffine", lambda m, x: m.F.layer_norm(x, (4,)), (2, 3, 4)),
    ("relu", lambda m, x: m.F.relu(x), (3, 4)),
    ("gelu", lambda m, x: m.F.gelu(x), (3, 4)),
    ("gelu_tanh", lambda m, x: m.F.gelu(x, approximate="tanh"), (3, 4)),
    ("tanh", lambda m, x: m.F.tanh(x), (3, 4)),
    ("sigmoid", lambda m, x: m.F.sigmoid(x), (3, 4)),
    ("silu", lambda m, x: m.F.silu(x), (3, 4)),
    ("leaky_relu", lambda m, x: m.F.leaky_relu(x, 0.1), (3, 4)),
    ("softmax", lambda m, x: m.F.softmax(x, dim=1), (3, 4)),
    ("log_softmax", lambda m, x: m.F.log_softmax(x, dim=-1), (2, 3, 4)),
    ("embedding_repeats", lambda m, i, w: m.F.embedding(i, w), T23, (4, 3)),
    ("cross_entropy", lambda m, x, t: m.F.cross_entropy(x, t), (3, 4), T3),
    ("cross_entropy_sum", lambda m, x, t: m.F.cross_entropy(x, t, reduction="sum"), (3, 4), T3),
    ("cross_entropy_none", lambda m, x, t: m.F.cross_entropy(x, t, reduction="none"), (3, 4), T3),
    ("cross_entropy_smooth", lambda m, x, t: m.F.cross_entropy(x, t, label_smoothing=0.1), (3, 4), T3),
    ("cross_entropy_ignore", lambda m, x, t: m.F.cross_entropy(x, t), (3, 4), const([0, -100, 2])),
    ("cross_entropy_nCL", lambda m, x, t: m.F.cross_entropy(x, t), (2, 4, 4), T23),
    ("nll_loss", lambda m, x, t: m.F.nll_loss(x, t), (3, 4), T3),
    ("mse_loss", lambda m, x, y: m.F.mse_loss(x, y), (3, 4), (3, 4)),
    ("mse_loss_sum", lambda m, x, y: m.F.mse_loss(x, y, reduction="sum"), (3, 4), (3, 4)),
    ("dropout_eval", lambda m, x: m.F.dropout(x, 0.5, training=False), (3, 4)),
]


@pytest.mark.parametrize("name,fn,specs", [(c[0], c[1], c[2:]) for c in CASES], ids=[c[0] for c in CASES])
def test_functional_matches_torch(name, fn, specs):
    check(fn, *specs)


def test_batch_norm_running_stats_and_eval_match_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 2)) * 3 + 1
    rm, rv = np.zeros(3), np.ones(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(2):
        F.batch_norm(distbp.tensor(x), rm, rv, training=True, momentum=0.2)
        torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.2)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-10)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-10)
    check(lambda m, x, w, b: m.F.batch_norm(x, m.tensor(rm),
                                            m.tensor(rv), w, b, training=False),
          (4, 3, 2), (3,), (3,))


def _sync_bn_halves(x, w, b, r):
    """Run batch_norm on the two halves of x in two threads that all-reduce through a barrier."""
    barrier = threading.Barrier(2)
    slots = [None, None]
    outs = [None, None]

    def make_allreduce(rank):
        def allreduce(arr):
            slots[rank] = arr.copy()
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()
            arr[...] = total
            return arr
        return allreduce

    def run(rank):
        half = slice(rank * len(x) // 2, (rank + 1) * len(x) // 2)
        xt = distbp.tensor(x[half], requires_grad=True)
        wt, bt = distbp.tensor(w, requires_grad=True), distbp.tensor(b, requires_grad=True)
        rm, rv = np.zeros(w.shape), np.ones(w.shape)
        y = _batch_norm(xt, rm, rv, wt, bt, training=True, allreduce=make_allreduce(rank))
        (y * distbp.tensor(r[half])).sum().backward()
        outs[rank] = (y.data, xt.grad, wt.grad, bt.grad, rm, rv)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outs


@pytest.mark.parametrize("shape", [(8, 3), (6, 2, 5), (4, 3, 3, 2)])
def test_sync_batch_norm_halves_equal_full_batch(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 2 + 0.5
    r = rng.standard_normal(shape)
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    xt, wt, bt = (distbp.tensor(a, requires_grad=True) for a in (x, w, b))
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    y = F.batch_norm(xt, rm, rv, wt, bt, training=True)
    (y * distbp.tensor(r)).sum().backward()
    halves = _sync_bn_halves(x, w, b, r)
    np.testing.assert_allclose(np.concatenate([h[0] for h in halves]), y.data, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([h[1] for h in halves]), xt.grad, rtol=1e-10, atol=1e-12)
    # weight/bias grads are per-replica sums; their sum (what the reducer forms) is the full grad
    np.testing.assert_allclose(halves[0][2] + halves[1][2], wt.grad, rtol=1e-10)
    np.testing.assert_allclose(halves[0][3] + halves[1][3], bt.grad, rtol=1e-10)
    for h in halves:  # running stats use the global count
        np.testing.assert_allclose(h[4], rm, rtol=1e-10)
        np.testing.assert_allclose(h[5], rv, rtol=1e-10)


def test_dropout_scales_and_masks():
    distbp.manual_seed(0)
    x = distbp.ones(1000, 10, requires_grad=True)
    y = F.dropout(x, 0.3)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)
    assert F.dropout(x, 0.5, training=False) is x


def test_dropout_per_sample_masks_do_not_depend_on_the_rank_split():
    x = distbp.ones(6, 5)
    with distbp.random.per_sample(seed=7, step=3, indices=range(6)):
        full1, full2 = F.dropout(x, 0.5).data, F.dropout(x, 0.5).data
    parts = []
    for idx in ([0, 1, 2], [3, 4, 5]):
        with distbp.random.per_sample(seed=7, step=3, indices=idx):
            parts.append((F.dropout(distbp.ones(3, 5), 0.5).data, F.dropout(distbp.ones(3, 5), 0.5).data))
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), full1)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), full2)
    assert not np.array_equal(full1, full2)  # 2nd layer draws a different mask
    gen = np.random.Generator(np.random.Philox(np.random.SeedSequence([7, 3, 4, 1])))
    expected = (gen.random(5, dtype=np.float32) >= 0.5) * 2.0
    np.testing.assert_array_equal(full2[4], expected)
    with distbp.random.per_sample(seed=7, step=4, indices=range(6)):
        assert not np.array_equal(F.dropout(x, 0.5).data, full1)  # the step changes the mask


def test_uniform_rows_row_count_mismatch_names_both():
    with distbp.random.per_sample(0, 0, [1, 2]):
        with pytest.raises(ValueError, match=r"\(3, 4\).*2 sample indices"):
            distbp.random.uniform_rows((3, 4))


def test_get_activation_unknown_name_lists_valid_ones():
    assert F.get_activation("gelu") is F.gelu
    with pytest.raises(ValueError, match="'swish'.*relu"):
        F.get_activation("swish")


def test_conv_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 5\).*\(4, 2, 3, 3\)"):
        F.conv2d(distbp.randn(2, 3, 5, 5), distbp.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"\(2, 3, 5\).*\(4, 2, 3\)"):
        F.conv1d(distbp.randn(2, 3, 5), distbp.randn(4, 2, 3))


def test_cross_entropy_target_errors():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2,\)"):
        F.cross_entropy(distbp.randn(3, 4), distbp.tensor([0, 1]))
    with pytest.raises(IndexError, match="out of range"):
        F.cross_entropy(distbp.randn(3, 4), distbp.tensor([0, 1, 4]))


def test_embedding_grad_accumulates_repeated_indices():
    w = distbp.randn(5, 2, requires_grad=True)
    F.embedding(distbp.tensor([1, 1, 3, 1]), w).sum().backward()
    np.testing.assert_array_equal(w.grad[:, 0], [0, 3, 0, 1, 0])
