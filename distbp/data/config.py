"""From the trainer config's `data` section to datasets.

    data:
      name: mnist1d          # a built-in (mnist1d | digits | pydoc | synthetic) or "parquet"
      path: data/mnist1d     # prepared on first use when `name` is a built-in and path is missing
      feature: ""            # feature column; "": from meta.json (else "features")
      label: ""              # label column; "": from meta.json (else "label")
      shape: []              # sample shape, e.g. [1, 40]; []: from meta.json (else the list length)
      num_classes: 0         # 0: from meta.json, else max label + 1
      augment: []            # e.g. [{shift: 3}, {noise: 0.05}] (distbp.data.augment)

Errors name the key: a dataset error about its `sample_shape` parameter becomes one about
`data.shape`, and so on (PARAM_KEYS).
"""
from pathlib import Path

import numpy as np

from distbp.data.augment import build_augment
from distbp.data.builtins import BUILTINS, prepare
from distbp.data.parquet import ParquetDataset, read_meta
from distbp.errors import UsageError


def ensure_prepared(data_cfg):
    """Prepare the built-in named by data_cfg if its path is missing or empty; return the path."""
    name, path = data_cfg["name"], Path(data_cfg["path"])
    if name == "parquet":
        return path
    if name not in BUILTINS:
        raise UsageError(f"data.name {name!r} is neither a built-in ({', '.join(BUILTINS)}) "
                         f"nor 'parquet'")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return prepare(name, path)
    meta = read_meta(path) if path.is_dir() else None
    if meta is not None and meta.get("name") != name:
        raise UsageError(f"data.path {str(path)!r} holds {meta.get('name')!r}, but data.name is "
                         f"{name!r}; fix one of them")
    return path


# ParquetDataset's parameters -> the config keys that set them
PARAM_KEYS = {"path": "data.path", "feature_col": "data.feature", "label_col": "data.label",
              "sample_shape": "data.shape", "num_classes": "data.num_classes"}


def open_split(data_cfg, split, dtype=np.float32):
    """ParquetDataset of `split` ("train" / "test") as configured. Reads footers (and the first row
    group of the feature column when its lists vary in length)."""
    try:
        return ParquetDataset(data_cfg["path"], split,
                              feature_col=data_cfg.get("feature") or None,
                              label_col=data_cfg.get("label") or None,
                              sample_shape=data_cfg.get("shape") or None,
                              num_classes=data_cfg.get("num_classes") or None,
                              dtype=dtype)
    except UsageError as e:
        key = PARAM_KEYS.get(getattr(e, "param", None))
        if key is None:
            raise
        value = data_cfg.get(key.split(".")[1])
        raise UsageError(f"{key}{'=' + str(value) if value not in ('', [], 0, None) else ''}: "
                         f"{e}") from None


def build_augment_from(data_cfg):
    """The `data.augment` transform (or None), its errors naming the key."""
    try:
        return build_augment(data_cfg.get("augment"))
    except UsageError as e:
        raise UsageError(f"data.augment: {e}") from None
