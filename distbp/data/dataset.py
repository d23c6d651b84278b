"""The dataset interface the loaders use, and an in-memory implementation of it.

A dataset has `len(ds)`, `ds.sample_shape`, `ds.task` ("classification" or "lm") and
`ds.take(indices) -> (x, y)`: x (n, *sample_shape), y (n,) labels or (n, T) next-token targets.
ParquetDataset reads rows from disk; ArrayDataset wraps numpy arrays already in memory.
"""
import numpy as np

from distbp.data.loader import EvalLoader
from distbp.errors import UsageError


class Dataset:
    """Shared behaviour on top of len / take / sample_shape / task / num_classes."""
    task = "classification"
    num_classes = None
    vocab = None

    def describe(self):
        """What a model needs: shape, num_classes, and for text vocab_size and block_size."""
        info = {"shape": tuple(self.sample_shape), "task": self.task, "rows": len(self)}
        if self.task == "lm":
            info.update(vocab_size=self.num_classes, block_size=self.sample_shape[-1],
                        num_classes=self.num_classes)
            if self.vocab is not None:
                info["vocab"] = list(self.vocab)
        else:
            info["num_classes"] = self.num_classes
        return info

    def shard_batches(self, rank, world_size, batch_size):
        """(x, y) of this rank's contiguous shard, every sample once over all ranks (EvalLoader)."""
        for batch in EvalLoader(self, batch_size, rank, world_size):
            yield batch.x, batch.y


class ArrayDataset(Dataset):
    """x (N, *sample_shape) and y (N,) labels (or (N, T) next-token targets) held in memory."""

    def __init__(self, x, y, num_classes=None):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise UsageError(f"ArrayDataset: x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        self.sample_shape = tuple(x.shape[1:])
        self.task = "classification" if y.ndim == 1 else "lm"
        self.num_classes = int(num_classes) if num_classes else int(y.max()) + 1 if len(y) else 0

    def __len__(self):
        return len(self.x)

    def __repr__(self):
        return f"ArrayDataset({len(self)} rows, x{self.sample_shape})"

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return self.x[indices], self.y[indices]
