"""From the trainer config's `data` section to datasets.

    data:
      name: mnist1d          # a built-in (mnist1d | digits | pydoc | synthetic) or "parquet"
      path: data/mnist1d     # prepared on first use when `name` is a built-in and path is missing
      feature: ""            # feature column; "": from meta.json (else "features")
      label: ""              # label column; "": from meta.json (else "label")
      shape: []              # sample shape, e.g. [1, 40]; []: from meta.json (else the list length)
      num_classes: 0         # 0: from meta.json, else max label + 1
"""
from pathlib import Path

import numpy as np

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


def open_split(data_cfg, split, dtype=np.float32):
    """ParquetDataset of `split` ("train" / "test") as configured. Reads footers only."""
    return ParquetDataset(data_cfg["path"], split,
                          feature_col=data_cfg.get("feature") or None,
                          label_col=data_cfg.get("label") or None,
                          sample_shape=data_cfg.get("shape") or None,
                          num_classes=data_cfg.get("num_classes") or None,
                          dtype=dtype)
