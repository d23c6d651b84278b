import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from distbp.data import BUILTINS, ParquetDataset, prepare, read_meta
from distbp.errors import UsageError


def load(path, split):
    ds = ParquetDataset(path, split)
    return ds.take(np.arange(len(ds)))


def test_mnist1d(prepared):
    path = prepared("mnist1d")  # generated once per session: a few seconds
    x, y = load(path, "train")
    xt, yt = load(path, "test")
    assert x.shape == (4000, 1, 40) and xt.shape == (1000, 1, 40) and x.dtype == np.float32
    assert set(np.unique(y)) == set(np.unique(yt)) == set(range(10))
    assert np.bincount(np.concatenate([y, yt])).tolist() == [500] * 10  # 500 per class in total
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05  # make_dataset standardises
    meta = read_meta(path)
    assert meta["sample_shape"] == [1, 40] and meta["num_classes"] == 10 and meta["seed"] == 42
    assert pq.ParquetFile(path / "train.parquet").metadata.num_row_groups == 8  # 512-row groups


@pytest.fixture
def small_mnist1d_args(monkeypatch):
    """The real mnist1d generator on 50 samples instead of 5000, to stay fast."""
    import mnist1d.data
    real = mnist1d.data.get_dataset_args

    def small():
        args = real()
        args.num_samples = 50
        return args
    monkeypatch.setattr(mnist1d.data, "get_dataset_args", small)
    return small


def test_mnist1d_is_the_package_generator_and_deterministic(small_mnist1d_args):
    from mnist1d.data import make_dataset
    from distbp.data.builtins import make_mnist1d
    splits, _ = make_mnist1d(42)
    ref = make_dataset(small_mnist1d_args())  # seed 42, generated offline
    np.testing.assert_array_equal(splits["train"]["features"], ref["x"].astype(np.float32))
    np.testing.assert_array_equal(splits["test"]["label"], ref["y_test"])
    again, _ = make_mnist1d(42)
    other, _ = make_mnist1d(1)
    np.testing.assert_array_equal(again["test"]["features"], splits["test"]["features"])
    assert not np.array_equal(other["test"]["features"], splits["test"]["features"])


def test_mnist1d_leaves_global_random_state_alone(small_mnist1d_args):
    import random

    from distbp.data.builtins import make_mnist1d
    np.random.seed(7)
    random.seed(7)
    before, py_before = np.random.get_state()[1].copy(), random.getstate()
    splits, _ = make_mnist1d(3)  # make_dataset calls np.random.seed(3) inside
    assert splits["train"]["features"].shape == (40, 40)
    assert (np.random.get_state()[1] == before).all() and random.getstate() == py_before


def test_digits(prepared):
    path = prepared("digits")
    x, y = load(path, "train")
    xt, yt = load(path, "test")
    assert x.shape == (1437, 1, 8, 8) and xt.shape == (360, 1, 8, 8)
    assert 0 <= x.min() and x.max() <= 1 and x.max() == 1
    # stratified: every class has about 20% of its images in the test split
    frac = np.bincount(yt, minlength=10) / (np.bincount(y, minlength=10) + np.bincount(yt, minlength=10))
    assert np.all(np.abs(frac - 0.2) < 0.02)


def test_pydoc_tokens_tile_the_text(prepared):
    from pydoc_data.topics import topics
    path = prepared("pydoc")
    meta = read_meta(path)
    vocab, T = meta["vocab"], meta["block_size"]
    assert T == 128 and vocab[0] == "\ufffd" and len(vocab) == len(set(vocab))
    ds = ParquetDataset(path, "train")
    assert ds.task == "lm" and ds.describe()["vocab_size"] == len(vocab)
    x, y = ds.take(np.arange(len(ds)))
    assert x.shape == (len(ds), T) and x.dtype == np.int64
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])   # y is x shifted by one
    np.testing.assert_array_equal(x[1:, 0], y[:-1, -1])  # rows continue where the last ended
    text = "".join(topics[k] for k in sorted(topics))
    decoded = "".join(vocab[i] for i in np.concatenate([x[0], y[0, -1:]]))
    expect = "".join(c if c in vocab else vocab[0] for c in text[:T + 1])
    assert decoded == expect
    n_train, n_test = len(ds), len(ParquetDataset(path, "test"))
    assert n_train * T <= meta["text_chars"]["train"] and 0.08 < n_test / (n_train + n_test) < 0.12


def test_synthetic_is_balanced_and_learnable(prepared):
    x, y = load(prepared("synthetic"), "train")
    assert x.shape == (512, 1, 16) and np.bincount(y).tolist() == [128] * 4
    xt, yt = load(prepared("synthetic"), "test")
    centers = np.stack([x[y == c, 0].mean(0) for c in range(4)])
    nearest = np.argmin(((xt[:, 0, None] - centers) ** 2).sum(-1), axis=1)
    assert (nearest == yt).mean() > 0.9


@pytest.mark.parametrize("name", ["synthetic", "digits"])
def test_same_seed_same_data_other_seed_other_data(tmp_path, prepared, name):
    again = prepare(name, tmp_path / "a")
    other = prepare(name, tmp_path / "b", seed=1)
    ref = load(prepared(name), "test")
    np.testing.assert_array_equal(load(again, "test")[0], ref[0])
    assert not np.array_equal(load(other, "test")[0], ref[0])


def test_meta_and_layout(prepared):
    path = prepared("synthetic")
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "test.parquet", "train.parquet"]
    meta = json.loads((path / "meta.json").read_text())
    assert meta["splits"] == {"train": {"file": "train.parquet", "rows": 512},
                              "test": {"file": "test.parquet", "rows": 128}}
    assert meta["feature_col"] == "features" and meta["label_col"] == "label"


def test_prepare_is_idempotent_and_refuses_to_clobber(tmp_path, prepared):
    out = prepare("synthetic", tmp_path / "s")
    stamp = (out / "train.parquet").stat().st_mtime_ns
    assert prepare("synthetic", out) == out  # already there: nothing rewritten
    assert (out / "train.parquet").stat().st_mtime_ns == stamp
    with pytest.raises(UsageError, match="already holds dataset 'synthetic'.*not 'digits'"):
        prepare("digits", out)
    with pytest.raises(UsageError, match="seed 0, not 'synthetic' with seed 3"):
        prepare("synthetic", out, seed=3)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a distbp dataset; refusing"):
        prepare("synthetic", mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        prepare("synthetic", tmp_path / "file")
    (tmp_path / "empty").mkdir()
    prepare("synthetic", tmp_path / "empty")  # an empty directory is fine
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no temp dirs left behind


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    import distbp.data.builtins as B

    def broken(seed):
        return {"train": {"features": np.zeros((4, 3), np.float32)}}, {"sample_shape": [3]}
    monkeypatch.setitem(B.BUILTINS, "synthetic", (broken, 0, "broken"))
    monkeypatch.setattr(B, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        prepare("synthetic", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_unknown_builtin_lists_the_valid_ones(tmp_path):
    with pytest.raises(UsageError, match="unknown built-in dataset 'cifar'; choose from " +
                       ", ".join(BUILTINS)):
        prepare("cifar", tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_concurrent_prepares_agree(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(3) as pool:  # e.g. several ranks preparing on first use
        paths = list(pool.map(lambda _: prepare("synthetic", tmp_path / "s"), range(3)))
    assert paths == [tmp_path / "s"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # the losers' temp dirs are gone
    assert len(ParquetDataset(tmp_path / "s", "train")) == 512
