"""Map-style datasets: anything with __len__ and __getitem__(int) (a numpy array is one)."""
import numpy as np

from distbp.tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclasses define __getitem__ and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Sample i is (t[i] for t in tensors); every tensor (Tensor or numpy array) has the same
    number of rows."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [len(t) for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors (rows {sizes})")
        self.tensors = tensors
        self._arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors]

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) if isinstance(t, Tensor) else a[index]
                     for t, a in zip(self.tensors, self._arrays))

    def __len__(self):
        return len(self._arrays[0])

    def batch(self, indices):
        """The collated batch of `indices` in one fancy index: what default_collate would build
        from the samples one by one (the DataLoader's fast path)."""
        idx = np.asarray(indices, np.int64)
        return tuple(Tensor(a[idx]) for a in self._arrays)


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Subsets of the given lengths (or fractions summing to 1) of a random permutation."""
    from distbp.utils.data.sampler import permutation
    n = len(dataset)
    if all(0 <= f <= 1 for f in lengths) and abs(sum(lengths) - 1) < 1e-9 and sum(lengths) != n:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {list(lengths)} do not sum to the dataset's {n}")
    perm = permutation(n, generator)
    bounds = np.cumsum([0] + list(lengths))
    return [Subset(dataset, perm[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:])]
