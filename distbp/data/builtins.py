"""Built-in datasets, generated offline and written as Parquet by `prepare`.

    distbp data prepare mnist1d --out data/mnist1d

  mnist1d    MNIST-1D (Greydanus 2020) from the mnist1d package's make_dataset with its default
             arguments (seed 42 unless given): 4000 train / 1000 test, 40 features, 10 classes,
             x (1, 40).
  digits     scikit-learn's bundled 8x8 digits scaled to [0, 1]: stratified 1437 train / 360 test
             split drawn from the seed, 10 classes, x (1, 8, 8).
  pydoc      English text of Python's pydoc_data.topics (sorted keys, concatenated) for a
             character-level LM: first 90% train, last 10% test; rows of block_size+1 char ids with
             stride block_size (x = tokens[:-1], y = tokens[1:]). Chars seen < 5 times in train
             map to id 0.
             The text is that of the running Python, so it differs slightly between Python versions.
  synthetic  Gaussian blobs for tests: 4 classes in 16 dims, 512 train / 128 test, x (1, 16).

Layout written: OUT/train.parquet, OUT/test.parquet, OUT/meta.json (see distbp.data.parquet).
The dataset is built in a temporary sibling directory and renamed into place, so OUT is either
absent or complete; an existing OUT is never overwritten.
"""
import json
import os
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from distbp.data.parquet import META_FILE, META_FORMAT, ROW_GROUP_SIZE, read_meta, write_table
from distbp.errors import UsageError

UNK = "\ufffd"  # vocab[0] of the pydoc LM: stands for every rare character


def _needs(package, name):
    raise UsageError(f"built-in {name!r} needs the {package} package: pip install \"distbp[data]\"")


def make_mnist1d(seed):
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        _needs("mnist1d", "mnist1d")
    args = get_dataset_args()  # defaults: 5000 samples, 80% train, 40 values per sample
    args.seed = seed
    # make_dataset seeds the global `random` and `np.random` states; leave the caller's untouched.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)  # generates locally; get_dataset would try to download a pickle
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    splits = {split: {"features": d["x" + suffix].astype(np.float32),
                      "label": d["y" + suffix].astype(np.int64)}
              for split, suffix in (("train", ""), ("test", "_test"))}
    return splits, {"task": "classification", "sample_shape": [1, 40], "num_classes": 10}


def make_digits(seed):
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        _needs("scikit-learn", "digits")
    digits = load_digits()  # bundled with scikit-learn: 1797 images, pixels 0..16
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=360, stratify=y, random_state=seed)
    splits = {"train": {"features": x_tr, "label": y_tr}, "test": {"features": x_te, "label": y_te}}
    return splits, {"task": "classification", "sample_shape": [1, 8, 8], "num_classes": 10}


def make_pydoc(seed, block_size=128, min_count=5):
    from pydoc_data.topics import topics
    text = "".join(topics[k] for k in sorted(topics))
    cut = int(len(text) * 0.9)
    counts = Counter(text[:cut])
    vocab = [UNK] + sorted(c for c, k in counts.items() if k >= min_count and c != UNK)
    ids = {c: i for i, c in enumerate(vocab)}

    def rows(part):  # (rows, block_size + 1): consecutive windows overlapping by one token
        tokens = np.array([ids.get(c, 0) for c in part], dtype=np.int32)
        n = (len(tokens) - 1) // block_size
        return tokens[np.arange(n)[:, None] * block_size + np.arange(block_size + 1)]

    splits = {"train": {"tokens": rows(text[:cut])}, "test": {"tokens": rows(text[cut:])}}
    return splits, {"task": "lm", "feature_col": "tokens", "label_col": None,
                    "sample_shape": [block_size], "num_classes": len(vocab),
                    "block_size": block_size,
                    "row_group_size": 256, "vocab": vocab, "unk_id": 0,
                    "text_chars": {"train": cut, "test": len(text) - cut}}


def make_synthetic(seed, n_train=512, n_test=128, dim=16, num_classes=4):
    rng = np.random.default_rng([seed, 0x5E7])
    centers = rng.normal(0.0, 1.0, (num_classes, dim))  # ~5.7 apart with unit noise: learnable

    def draw(n):
        y = rng.permutation(np.arange(n) % num_classes)  # balanced classes
        x = centers[y] + rng.normal(0.0, 1.0, (n, dim))
        return {"features": x.astype(np.float32), "label": y.astype(np.int64)}

    splits = {"train": draw(n_train), "test": draw(n_test)}
    return splits, {"task": "classification", "sample_shape": [1, dim], "num_classes": num_classes,
                    "row_group_size": 128}  # several row groups even in a small set: shard tests


# name -> (generator, default seed, one-line description)
BUILTINS = {
    "mnist1d": (make_mnist1d, 42, "MNIST-1D, 4000/1000 rows, x (1, 40), 10 classes"),
    "digits": (make_digits, 0, "scikit-learn 8x8 digits, 1437/360 rows, x (1, 8, 8), 10 classes"),
    "pydoc": (make_pydoc, 0, "Python pydoc topics text, char-level LM, block 128"),
    "synthetic": (make_synthetic, 0, "Gaussian blobs, 512/128 rows, x (1, 16), 4 classes"),
}


def _check_builtin(name):
    if name not in BUILTINS:
        raise UsageError(f"unknown built-in dataset {name!r}; choose from {', '.join(BUILTINS)}")


def _already_prepared(out, name, seed):
    """True if `out` holds this exact built-in; False if `out` is free to create; else refuse."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise UsageError(f"{out} is a file; give a directory for the dataset")
    if not any(out.iterdir()):
        return False  # an empty directory is replaced by the rename
    meta = read_meta(out) if (out / META_FILE).is_file() else None
    if meta is None:
        raise UsageError(f"{out} exists and is not a distbp dataset; refusing to write into it "
                         f"(choose another --out)")
    if meta.get("name") != name or meta.get("seed") != seed:
        raise UsageError(f"{out} already holds dataset {meta.get('name')!r} with seed "
                         f"{meta.get('seed')}, not {name!r} with seed {seed}; choose another --out")
    missing = [s["file"] for s in meta.get("splits", {}).values() if not (out / s["file"]).exists()]
    if missing:
        raise UsageError(f"{out}: dataset is incomplete (missing {missing}); remove it and "
                         f"prepare again")
    return True


def prepare(name, out_dir, seed=None):
    """Write built-in `name` to `out_dir` (if not already there) and return its Path.

    seed=None uses the built-in's default (42 for mnist1d, the canonical MNIST-1D; 0 otherwise).
    Safe to call from several processes at once: the loser of the final rename keeps the winner's
    identical copy.
    """
    _check_builtin(name)
    generate, default_seed, description = BUILTINS[name]
    seed = default_seed if seed is None else int(seed)
    out = Path(out_dir)
    if _already_prepared(out, name, seed):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    splits, meta = generate(seed)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset is ordinary data
        meta = {"format": META_FORMAT, "version": 1, "name": name, "seed": seed,
                "description": description, "feature_col": "features", "label_col": "label", **meta,
                "splits": {}}
        for split, columns in splits.items():
            rows_per_group = meta.get("row_group_size", ROW_GROUP_SIZE)
            write_table(tmp / f"{split}.parquet", columns, rows_per_group)
            rows = len(next(iter(columns.values())))
            meta["splits"][split] = {"file": f"{split}.parquet", "rows": rows}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        try:
            os.rename(tmp, out)  # atomic; fails if `out` appeared meanwhile and is not empty
        except OSError:
            if _already_prepared(out, name, seed):
                return out
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
