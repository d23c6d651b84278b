import numpy as np
import pytest

from distbp.data import (Compose, GaussianNoise, RandomCrop, RandomFlip, RandomShift,
                         build_augment)
from distbp.errors import UsageError


def test_shift_1d_moves_the_signal_and_zero_fills():
    x = np.tile(np.arange(1, 11, dtype=np.float32), (64, 1, 1))  # (64, 1, 10)
    out = RandomShift(3)(x, np.arange(64), step=0, seed=0)
    shifts = set()
    for row in out[:, 0]:
        nz = np.flatnonzero(row)
        s = int(nz[0] - (row[nz[0]] - 1))  # first kept value v sits at index v - 1 + shift
        shifts.add(s)
        assert len(nz) >= 7 and np.all(np.diff(row[nz]) == 1)  # contiguous, order kept
        if s > 0:
            assert np.all(row[:s] == 0)
    assert shifts == set(range(-3, 4))  # every shift in [-3, 3] is drawn


def test_shift_2d_wrap_is_a_roll_of_both_axes():
    x = np.random.default_rng(0).normal(size=(8, 1, 5, 5))
    out = RandomShift(2, fill="wrap")(x, np.arange(8), 1, 0)
    for a, b in zip(x, out):
        assert any(np.array_equal(np.roll(a, (i, j), axis=(1, 2)), b)
                   for i in range(-2, 3) for j in range(-2, 3))


def test_crop_with_padding_equals_pad_then_window():
    x = np.random.default_rng(1).normal(size=(16, 1, 6, 6))
    out = RandomCrop(padding=1)(x, np.arange(16), 0, 0)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for p, o in zip(padded, out):
        assert any(np.array_equal(p[:, i:i + 6, j:j + 6], o) for i in range(3) for j in range(3))


def test_flip_and_noise():
    x = np.random.default_rng(2).normal(size=(200, 1, 4, 4)).astype(np.float32)
    out = RandomFlip()(x, np.arange(200), 0, 0)
    flipped = [np.array_equal(o, a[..., ::-1]) for o, a in zip(out, x)]
    kept = [np.array_equal(o, a) for o, a in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and 60 < sum(flipped) < 140
    noisy = GaussianNoise(0.5)(x, np.arange(200), 0, 0)
    assert noisy.dtype == np.float32 and abs(np.std(noisy - x) - 0.5) < 0.02


def test_draws_depend_on_seed_step_and_global_index_only():
    x = np.zeros((6, 1, 12), np.float32)
    idx = np.array([5, 900, 17, 3, 42, 8])
    aug = build_augment([{"shift": 4}, {"noise": 1.0}])
    full = aug(x + 1, idx, 7, 11)
    # the same samples in a different order and batch composition get the same augmentation
    order = np.array([3, 0, 5])
    np.testing.assert_array_equal(aug(x[order] + 1, idx[order], 7, 11), full[order])
    assert not np.array_equal(aug(x + 1, idx, 8, 11), full)   # another step
    assert not np.array_equal(aug(x + 1, idx, 7, 12), full)   # another seed


def test_build_augment_schema():
    assert build_augment(None) is None and build_augment([]) is None
    t = build_augment([{"shift": 3}, {"noise": 0.05}])
    assert isinstance(t, Compose) and [type(s) for s in t.transforms] == [RandomShift, GaussianNoise]
    assert t.transforms[0].max_shift == 3 and t.transforms[1].std == 0.05
    t = build_augment([{"crop": {"padding": 1}}, "flip"])
    assert isinstance(t.transforms[0], RandomCrop) and t.transforms[0].max_shift == 1
    assert isinstance(t.transforms[1], RandomFlip) and t.transforms[1].p == 0.5
    assert isinstance(build_augment({"shift": {"max_shift": 2, "fill": "wrap"}}), RandomShift)


@pytest.mark.parametrize("spec,message", [
    ([{"rotate": 10}], "unknown augmentation 'rotate'; choose from shift, crop, flip, noise"),
    ([{"shift": {"amount": 2}}], "augmentation 'shift': bad parameters"),
    ([{"shift": -1}], "RandomShift: shift must be an integer >= 0, got -1"),
    ([{"noise": -0.1}], "GaussianNoise: std must be >= 0"),
    ([{"flip": 2}], r"RandomFlip: p must be in \[0, 1\]"),
    ([3], "augment item must be a name or"),
    (7, "augment must be a list"),
])
def test_build_augment_errors(spec, message):
    with pytest.raises(UsageError, match=message):
        build_augment(spec)
