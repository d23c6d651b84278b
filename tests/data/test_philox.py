import numpy as np

from distbp.data import philox


def hexwords(counter, key):
    return ["%08x" % int(w) for w in philox.philox4x32(counter, key)]


def test_known_answers_of_random123():
    assert hexwords((0, 0, 0, 0), (0, 0)) == ["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]
    assert hexwords((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2) == \
        ["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"]
    assert hexwords((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == \
        ["d16cfe09", "94fdcceb", "5001e420", "24126ea1"]


def test_rows_depend_only_on_their_own_index():
    idx = np.array([3, 10**10, 7, 0])
    full = philox.random_words(5, 9, 2, idx, 11)
    assert full.shape == (4, 11)
    np.testing.assert_array_equal(philox.random_words(5, 9, 2, idx[[2]], 11), full[[2]])
    np.testing.assert_array_equal(philox.random_words(5, 9, 2, idx, 3), full[:, :3])
    for other in ((6, 9, 2), (5, 8, 2), (5, 9, 3)):  # seed, stream, step all matter
        assert not (philox.random_words(*other, idx, 11) == full).any(axis=1).all()
    assert philox.random_words(0, 1, 0, np.array([], dtype=np.int64), 5).shape == (0, 5)


def test_distributions():
    idx = np.arange(4000)
    u = philox.uniform(1, 2, 3, idx, 10)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.002
    z = philox.normal(1, 2, 3, idx, 9)
    assert z.shape == (4000, 9) and abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    k = philox.integers(1, 2, 3, idx, 2, -3, 3)
    counts = np.bincount(k.ravel() + 3)
    assert len(counts) == 7 and counts.min() > 0.9 * 8000 / 7
