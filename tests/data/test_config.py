import numpy as np
import pytest

from distbp.data import ensure_prepared, open_split, prepare
from distbp.errors import UsageError


def cfg(**kw):
    base = {"name": "synthetic", "path": "", "feature": "", "label": "", "shape": [],
            "num_classes": 0, "augment": []}
    return {**base, **kw}


def test_builtin_is_prepared_on_first_use(tmp_path):
    c = cfg(path=str(tmp_path / "data" / "syn"))
    assert ensure_prepared(c) == tmp_path / "data" / "syn"
    train = open_split(c, "train", np.float64)
    assert train.describe() == {"shape": (1, 16), "task": "classification", "rows": 512,
                                "num_classes": 4, "num_outputs": 4, "target_shape": ()}
    assert train.take([0])[0].dtype == np.float64
    ensure_prepared(c)  # second call: already there


def test_custom_parquet_with_overrides(tmp_path):
    prepare("synthetic", tmp_path / "s")
    c = cfg(name="parquet", path=str(tmp_path / "s"), feature="features", label="label",
            shape=[4, 4], num_classes=6)
    ensure_prepared(c)
    ds = open_split(c, "test")
    assert ds.sample_shape == (4, 4) and ds.describe()["num_classes"] == 6


def test_text_describe_has_vocab(prepared):
    meta = open_split(cfg(name="pydoc", path=str(prepared("pydoc"))), "train").describe()
    assert meta["vocab_size"] == len(meta["vocab"]) and meta["block_size"] == 128
    assert meta["shape"] == (128,)


def test_config_errors(tmp_path):
    with pytest.raises(UsageError, match="data.name 'cifar' is neither a built-in"):
        ensure_prepared(cfg(name="cifar", path=str(tmp_path)))
    prepare("synthetic", tmp_path / "s")
    with pytest.raises(UsageError, match="holds 'synthetic', but data.name is 'digits'"):
        ensure_prepared(cfg(name="digits", path=str(tmp_path / "s")))
    with pytest.raises(UsageError, match="no column 'pixels'"):
        open_split(cfg(path=str(tmp_path / "s"), feature="pixels"), "train")
