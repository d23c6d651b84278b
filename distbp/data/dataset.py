"""The dataset interface the loaders use, and an in-memory implementation of it.

A dataset is anything with `len(ds)`, `ds.sample_shape` and `ds.take(indices) -> (x, y)` where x is
(n, *sample_shape) and y is (n,) labels (or (n, T) next-token targets). ParquetDataset reads rows
from disk; ArrayDataset wraps numpy arrays already in memory (small experiments, tests).
"""
import numpy as np

from distbp.errors import UsageError


class ArrayDataset:
    """x (N, *sample_shape) and y (N, ...) held in memory."""

    def __init__(self, x, y, num_classes=None):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise UsageError(f"ArrayDataset: x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        self.sample_shape = tuple(x.shape[1:])
        self.num_classes = num_classes
        self.task = "classification" if y.ndim == 1 else "lm"

    def __len__(self):
        return len(self.x)

    def __repr__(self):
        return f"ArrayDataset({len(self)} rows, x{self.sample_shape})"

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return self.x[indices], self.y[indices]
