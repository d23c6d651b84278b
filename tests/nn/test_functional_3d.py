"""The 3-D convolutions and pools, max_unpool, fractional max pooling and conv_tbc against
torch.nn.functional in float64 (outputs and every input grad, then finite differences), one line
per case, in the style of test_functional_more.py. All are composed (conv3d.py, pooling3d.py,
fractional.py, conv.py)."""
import numpy as np
import pytest
import torch

import distbp
import distbp.nn.functional as F
from distbp import nn
from tests.opcheck import check, const, pos

CONV3D = [
    ("conv3d_bias", lambda m, x, w, b: m.F.conv3d(x, w, b), (2, 3, 4, 5, 5), (4, 3, 2, 3, 2), (4,)),
    ("conv3d_stride_pad_dilation_groups",
     lambda m, x, w: m.F.conv3d(x, w, stride=(2, 1, 2), padding=(1, 0, 1), dilation=(2, 1, 1), groups=2),
     (1, 4, 7, 5, 6), (6, 2, 3, 2, 3)),
    ("conv3d_same_even", lambda m, x, w: m.F.conv3d(x, w, padding="same"), (1, 2, 4, 5, 4), (3, 2, 2, 3, 3)),
    ("conv3d_valid_unbatched", lambda m, x, w: m.F.conv3d(x, w, padding="valid"), (2, 4, 4, 3), (3, 2, 3, 3, 2)),
    ("conv_transpose3d_bias", lambda m, x, w, b: m.F.conv_transpose3d(x, w, b), (2, 3, 3, 4, 3), (3, 2, 2, 3, 2), (2,)),
    ("conv_transpose3d_stride_pad_outpad",
     lambda m, x, w: m.F.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1), (1, 2, 3, 3, 4), (2, 3, 3, 3, 3)),
    ("conv_transpose3d_groups_dilation",
     lambda m, x, w: m.F.conv_transpose3d(x, w, stride=(2, 1, 2), padding=(0, 1, 0), output_padding=(1, 0, 1),
                                          groups=2, dilation=(1, 2, 1)), (1, 4, 3, 3, 3), (4, 1, 2, 3, 2)),
    ("conv_transpose3d_outpad_beyond_pad",
     lambda m, x, w: m.F.conv_transpose3d(x, w, stride=3, padding=1, output_padding=2), (1, 2, 3, 2, 2), (2, 2, 3, 2, 2)),
]

POOL3D = [
    ("max_pool3d", lambda m, x: m.F.max_pool3d(x, 2), (2, 2, 4, 4, 5)),
    ("max_pool3d_ceil_pad_dilation_indices",
     lambda m, x: m.F.max_pool3d(x, (3, 2, 3), (2, 1, 2), (1, 1, 1), dilation=(1, 2, 1), ceil_mode=True,
                                 return_indices=True), (1, 2, 6, 5, 7)),
    ("max_pool3d_with_indices_unbatched", lambda m, x: m.F.max_pool3d_with_indices(x, 3, 2, 1), (2, 5, 6, 5)),
    ("avg_pool3d", lambda m, x: m.F.avg_pool3d(x, 2), (2, 2, 4, 4, 5)),
    ("avg_pool3d_ceil_exclude_pad",
     lambda m, x: m.F.avg_pool3d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), (1, 2, 6, 5, 7)),
    ("avg_pool3d_ceil_include_pad", lambda m, x: m.F.avg_pool3d(x, (3, 2, 2), (2, 1, 2), (1, 1, 0), ceil_mode=True),
     (1, 2, 6, 5, 7)),
    ("avg_pool3d_divisor", lambda m, x: m.F.avg_pool3d(x, 2, divisor_override=3), (1, 2, 4, 4, 4)),
    ("adaptive_max_pool3d", lambda m, x: m.F.adaptive_max_pool3d(x, (2, 3, 2)), (2, 2, 5, 7, 4)),
    ("adaptive_max_pool3d_none_indices", lambda m, x: m.F.adaptive_max_pool3d(x, (None, 3, 2), return_indices=True),
     (1, 2, 3, 7, 4)),
    ("adaptive_max_pool3d_with_indices", lambda m, x: m.F.adaptive_max_pool3d_with_indices(x, 2), (1, 2, 4, 4, 6)),
    ("lp_pool3d", lambda m, x: m.F.lp_pool3d(x, 2, 2), (1, 2, 4, 4, 4)),
    ("lp_pool3d_p3_stride", lambda m, x: m.F.lp_pool3d(x, 3, (2, 2, 1), stride=1), pos((1, 2, 3, 4, 3))),
    ("lp_pool3d_inf", lambda m, x: m.F.lp_pool3d(x, float("inf"), 2), (1, 2, 4, 4, 4)),
]


def _pooled(nd, shape, *args, seed=0):
    """(values shape, const(indices)) of torch's max_pool{nd}d on a random input."""
    x = torch.tensor(np.random.default_rng(seed).standard_normal(shape))
    y, i = getattr(torch.nn.functional, f"max_pool{nd}d")(x, *args, return_indices=True)
    return tuple(y.shape), const(i.numpy())


UNPOOL = [
    ("max_unpool2d", lambda m, v, i: m.F.max_unpool2d(v, i, 2), *_pooled(2, (2, 3, 6, 8), 2)),
    ("max_unpool1d_pad", lambda m, v, i: m.F.max_unpool1d(v, i, 3, 3, 1), *_pooled(1, (2, 3, 10), 3, 3, 1)),
    ("max_unpool3d_output_size", lambda m, v, i: m.F.max_unpool3d(v, i, 2, output_size=(1, 2, 5, 5, 6)),
     *_pooled(3, (1, 2, 4, 5, 6), 2)),
    ("max_unpool2d_unbatched", lambda m, v, i: m.F.max_unpool2d(v, i, (2, 3), output_size=(5, 7)),
     *_pooled(2, (3, 5, 7), (2, 3))),
]

CASES = CONV3D + POOL3D + UNPOOL


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's
@pytest.mark.parametrize("name,fn,specs", [(c[0], c[1], c[2:]) for c in CASES], ids=[c[0] for c in CASES])
def test_3d_and_unpool_ops_match_torch(name, fn, specs):
    check(fn, *specs)


def test_max_unpool_overlapping_windows_gives_the_true_gradient():
    """Overlapping pools (stride < kernel) repeat an index; the output is then the same either way,
    but torch's backward hands the full gradient to every repeat (a gather), so grads of
    unpool(pool(x)) come out multiplied by the repeat count. distbp's is the derivative of its
    forward (the repeat that is written gets it): forward compared with torch, grads with finite
    differences and with the composite's true gradient."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 7, 7))
    tv, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert len(np.unique(ti.numpy()[0, 0])) < ti.numpy()[0, 0].size  # there are repeats
    v = distbp.tensor(tv.numpy(), requires_grad=True)
    out = F.max_unpool2d(v, distbp.tensor(ti.numpy()), 3, 2, 1, output_size=(7, 7))
    ref = torch.nn.functional.max_unpool2d(tv, ti, 3, 2, 1, output_size=(7, 7))
    np.testing.assert_array_equal(out.data, ref.numpy())
    assert distbp.gradcheck(lambda a: F.max_unpool2d(a, distbp.tensor(ti.numpy()), 3, 2, 1,
                                                      output_size=(7, 7)), [v])
    # unpool(pool(x)) keeps each window maximum in place: its gradient is g there, 0 elsewhere
    xt = distbp.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
    g = rng.standard_normal((1, 2, 7, 7))
    (F.max_unpool2d(y, idx, 3, 2, 1, output_size=(7, 7)) * distbp.tensor(g)).sum().backward()
    kept = ref.numpy() != 0
    np.testing.assert_allclose(xt.grad, np.where(kept, g, 0.0), atol=1e-15)


def test_max_pool3d_indices_round_trip_through_max_unpool3d():
    x = distbp.tensor(np.random.default_rng(5).standard_normal((2, 3, 4, 6, 4)))
    y, idx = F.max_pool3d(x, 2, return_indices=True)
    back = F.max_unpool3d(y, idx, 2)
    ref = torch.nn.functional.max_unpool3d(*torch.nn.functional.max_pool3d(
        torch.tensor(x.data), 2, return_indices=True), 2)
    np.testing.assert_array_equal(back.data, ref.numpy())


@pytest.mark.parametrize("call, match", [
    (lambda: F.conv3d(distbp.zeros(1, 4, 3, 3, 3), distbp.zeros(2, 3, 1, 1, 1)), "does not match weight"),
    (lambda: F.conv3d(distbp.zeros(2, 3, 3), distbp.zeros(2, 2, 1, 1, 1)), r"expected input \(N, C, D, H, W\)"),
    (lambda: F.conv3d(distbp.zeros(1, 2, 3, 3, 3), distbp.zeros(2, 2, 1, 1, 1), stride=2, padding="same"),
     "not supported for strided"),
    (lambda: F.conv_transpose3d(distbp.zeros(1, 2, 2, 2, 2), distbp.zeros(2, 2, 2, 2, 2), stride=2,
                                output_padding=2), "output_padding"),
    (lambda: F.conv3d(distbp.zeros(1, 2, 3, 3, 2), distbp.zeros(2, 2, 1, 1, 3)), "conv3d: kernel 3"),
    (lambda: F.conv_transpose3d(distbp.zeros(1, 2, 1, 1, 1), distbp.zeros(2, 2, 1, 1, 1), padding=1),
     "conv_transpose3d: padding"),
    (lambda: F.avg_pool3d(distbp.zeros(1, 1, 2, 2, 2), 2, divisor_override=0), "divisor_override"),
    (lambda: F.max_pool3d(distbp.zeros(1, 1, 2, 5, 5), 3), r"max_pool3d: kernel_size \(3, 3, 3\) with padding"),
    (lambda: F.avg_pool3d(distbp.zeros(1, 1, 4, 5, 5), 2, padding=(2, 0, 0)), "avg_pool3d: padding"),
    (lambda: F.max_unpool2d(distbp.zeros(1, 1, 2, 2), distbp.tensor(np.full((1, 1, 2, 2), 99)), 2),
     "invalid max index 99"),
    (lambda: F.max_unpool2d(distbp.zeros(1, 1, 2, 2), distbp.tensor(np.zeros((1, 1, 2, 2), int)), 2,
                            output_size=(9, 9)), "invalid output_size"),
])
def test_bad_arguments_raise_naming_the_culprit(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- fractional max pooling, conv_tbc

_U = np.random.default_rng(6)
FRACTIONAL = [
    ("fractional_max_pool2d_size_indices", lambda m, x, u: m.F.fractional_max_pool2d(
        x, 2, output_size=(4, 5), return_indices=True, _random_samples=u), (2, 3, 7, 9),
     const(_U.uniform(size=(2, 3, 2)))),
    ("fractional_max_pool2d_ratio", lambda m, x, u: m.F.fractional_max_pool2d(
        x, (3, 2), output_ratio=(0.5, 0.6), _random_samples=u), (2, 3, 9, 10), const(_U.uniform(size=(2, 3, 2)))),
    ("fractional_max_pool2d_with_indices_unbatched", lambda m, x, u: m.F.fractional_max_pool2d_with_indices(
        x, 2, output_size=3, _random_samples=u), (3, 6, 5), const(_U.uniform(size=(1, 3, 2)))),
    ("fractional_max_pool3d_size_indices", lambda m, x, u: m.F.fractional_max_pool3d(
        x, 2, output_size=(3, 4, 2), return_indices=True, _random_samples=u), (1, 2, 5, 7, 4),
     const(_U.uniform(size=(1, 2, 3)))),
    ("fractional_max_pool3d_with_indices_ratio", lambda m, x, u: m.F.fractional_max_pool3d_with_indices(
        x, (2, 1, 2), output_ratio=0.5, _random_samples=u), (1, 2, 6, 8, 6), const(_U.uniform(size=(1, 2, 3)))),
    ("conv_tbc_pad", lambda m, x, w, b: m.F.conv_tbc(x, w, b, 1), (5, 2, 3), (3, 3, 4), (4,)),
    ("conv_tbc", lambda m, x, w, b: m.F.conv_tbc(x, w, b), (6, 1, 2), (2, 2, 3), (3,)),
]


@pytest.mark.parametrize("name,fn,specs", [(c[0], c[1], c[2:]) for c in FRACTIONAL],
                         ids=[c[0] for c in FRACTIONAL])
def test_fractional_pools_and_conv_tbc_match_torch(name, fn, specs):
    check(fn, *specs)


def test_fractional_max_pool_modules_draw_from_distbps_generator():
    pool = nn.FractionalMaxPool2d(2, output_ratio=0.5, return_indices=True)
    x = distbp.tensor(np.random.default_rng(7).standard_normal((2, 3, 9, 8)))
    distbp.manual_seed(3)
    a, ia = pool(x)
    distbp.manual_seed(3)
    b, ib = pool(x)
    assert a.shape == (2, 3, 4, 4) and np.array_equal(ia.data, ib.data)  # seeded: same windows
    fixed = np.random.default_rng(8).uniform(size=(2, 3, 3))
    ours = nn.FractionalMaxPool3d((2, 2, 1), output_size=(2, 3, 4), _random_samples=distbp.tensor(fixed))
    theirs = torch.nn.FractionalMaxPool3d((2, 2, 1), output_size=(2, 3, 4), _random_samples=torch.tensor(fixed))
    x3 = np.random.default_rng(9).standard_normal((2, 3, 4, 5, 6))
    np.testing.assert_array_equal(ours(distbp.tensor(x3)).data, theirs(torch.tensor(x3)).numpy())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["_random_samples"]
    with pytest.raises(ValueError, match="exactly one of output_size, output_ratio"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="output_ratio must be between 0 and 1"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)
