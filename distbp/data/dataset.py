"""The dataset interface the loaders use, and an in-memory implementation of it.

A dataset has `len(ds)`, `ds.sample_shape`, `ds.task` and `ds.take(indices) -> (x, y)`:
x (n, *sample_shape) and y (n, *target_shape), one of
    task "classification"   y (n,) integer labels
    task "regression"       y (n,) or (n, k) real-valued targets (mse; 0/1 for bce_with_logits)
    task "lm"               y (n, T) next-token ids
ParquetDataset reads rows from disk; ArrayDataset wraps numpy arrays already in memory;
as_dataset(obj) also takes an (x, y) pair or a map-style dataset (len and [i] -> (x_i, y_i)).
"""
import numpy as np

from distbp.data.loader import EvalLoader
from distbp.errors import UsageError


class Dataset:
    """Shared behaviour on top of len / take / sample_shape / task / num_classes."""
    task = "classification"
    num_classes = None
    vocab = None
    target_shape = None   # one sample's target: () a label, (k,) a target vector, (T,) text

    def describe(self):
        """What a model needs: shape, task, num_outputs (the width of the model's output: classes,
        vocabulary or target values), target_shape; num_classes, and for text vocab_size and
        block_size."""
        target_shape = tuple(self.target_shape if self.target_shape is not None
                             else self.take([0])[1].shape[1:])
        info = {"shape": tuple(self.sample_shape), "task": self.task, "rows": len(self),
                "target_shape": target_shape}
        if self.task == "lm":
            info.update(vocab_size=self.num_classes, block_size=self.sample_shape[-1],
                        num_classes=self.num_classes, num_outputs=self.num_classes)
            if self.vocab is not None:
                info["vocab"] = list(self.vocab)
        elif self.task == "classification":
            info.update(num_classes=self.num_classes, num_outputs=self.num_classes)
        else:
            info["num_outputs"] = int(np.prod(target_shape)) if target_shape else 1
        return info

    def shard_batches(self, rank, world_size, batch_size):
        """(x, y) of this rank's contiguous shard, every sample once over all ranks (EvalLoader)."""
        for batch in EvalLoader(self, batch_size, rank, world_size):
            yield batch.x, batch.y


TASKS = ("classification", "regression", "lm")


def infer_task(y):
    """Integer (N,) labels: classification; integer (N, T): lm; floats: regression."""
    if y.dtype.kind == "f":
        return "regression"
    return "classification" if y.ndim == 1 else "lm"


class ArrayDataset(Dataset):
    """x (N, *sample_shape) and y (N, ...) targets held in memory; task: see the module docstring
    (default from y: integer (N,) classification, integer (N, T) lm, floats regression; give
    task="regression" for 0/1 integer multi-label targets)."""

    def __init__(self, x, y, num_classes=None, task=None):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise UsageError(f"ArrayDataset: x has {len(x)} rows but y has {len(y)}")
        self.task = task or infer_task(y)
        if self.task not in TASKS:
            raise UsageError(f"ArrayDataset: task must be one of {', '.join(TASKS)}, "
                             f"got {self.task!r}")
        if self.task != "regression" and y.dtype.kind not in "iu":
            raise UsageError(f"ArrayDataset: task {self.task!r} needs integer targets, "
                             f"got {y.dtype}")
        self.x, self.y = x, y
        self.sample_shape, self.target_shape = tuple(x.shape[1:]), tuple(y.shape[1:])
        self.num_classes = None
        if self.task != "regression":
            self.num_classes = int(num_classes) if num_classes else int(y.max()) + 1 if len(y) \
                else 0

    def __len__(self):
        return len(self.x)

    def __repr__(self):
        return f"ArrayDataset({len(self)} rows, x{self.sample_shape})"

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return self.x[indices], self.y[indices]


class MapDataset(Dataset):
    """A map-style dataset (torch's: `len(ds)` and `ds[i] -> (x_i, y_i)`) as a distbp Dataset:
    `take` stacks the samples it is asked for."""

    def __init__(self, dataset, task=None, num_classes=None):
        if len(dataset) == 0:
            raise UsageError(f"{type(dataset).__name__}: the dataset is empty")
        self.dataset = dataset
        x0, y0 = self._item(0)
        self.sample_shape, self.target_shape = tuple(x0.shape), tuple(y0.shape)
        self.task = task or infer_task(y0.reshape(1, *y0.shape))
        self.num_classes = num_classes if self.task != "regression" else None
        if self.task != "regression" and not num_classes:
            self.num_classes = int(max(int(np.max(self._item(i)[1])) for i in range(len(self)))) + 1

    def __len__(self):
        return len(self.dataset)

    def __repr__(self):
        return f"MapDataset({type(self.dataset).__name__}, {len(self)} rows, x{self.sample_shape})"

    def _item(self, i):
        item = self.dataset[int(i)]
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise UsageError(f"{type(self.dataset).__name__}[{i}] must be an (x, y) pair, got "
                             f"{type(item).__name__}")
        return tuple(np.asarray(getattr(v, "data", v)) for v in item)

    def take(self, indices):
        items = [self._item(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if not items:
            x0, y0 = self._item(0)
            return np.empty((0, *x0.shape), x0.dtype), np.empty((0, *y0.shape), y0.dtype)
        return np.stack([x for x, _ in items]), np.stack([y for _, y in items])


def as_dataset(data, what="dataset"):
    """A distbp Dataset from a Dataset, an (x, y) pair of arrays, or a map-style dataset."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return ArrayDataset(*data)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return MapDataset(data)
    raise UsageError(f"{what}: expected a distbp Dataset, an (x, y) pair of arrays or a map-style "
                     f"dataset (len and [i] -> (x, y)), got {type(data).__name__}")
