"""DataLoader: batches of a map-style dataset, collated into Tensors, as torch's (in-process).

    loader = DataLoader(ds, batch_size=64, shuffle=True, drop_last=False, collate_fn=None)

Samples are read in this process (num_workers is accepted for ported scripts and changes nothing
but speed: the batches are the same). A TensorDataset or numpy array with the default collate is
indexed once per batch instead of once per sample, with the same result.
"""
import numbers

import numpy as np

from distbp.tensor import Tensor
from distbp.utils.data.dataset import TensorDataset
from distbp.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler


def default_collate(batch):
    """Stack a list of samples: Tensors and numpy arrays -> one Tensor with a new first dimension,
    numbers -> a Tensor (float -> float64, int -> int64, as torch), str -> list, and tuples,
    lists and dicts collated field by field."""
    first = batch[0]
    if isinstance(first, Tensor):
        return Tensor(np.stack([b.data for b in batch]))
    if isinstance(first, (np.ndarray, np.generic)):
        return Tensor(np.stack(batch))
    if isinstance(first, bool):
        return Tensor(np.array(batch, np.bool_))
    if isinstance(first, numbers.Integral):
        return Tensor(np.array(batch, np.int64))
    if isinstance(first, numbers.Real):
        return Tensor(np.array(batch, np.float64))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise RuntimeError("default_collate: each sample in a batch must have the same number "
                               "of fields")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: cannot collate samples of type {type(first).__name__}; "
                    "pass collate_fn=")


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device=""):
        if worker_init_fn is not None:
            raise ValueError("DataLoader(worker_init_fn=...): distbp reads samples in this process "
                             "and would never call it; seed in the script instead")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self._fast = collate_fn is None and isinstance(dataset, (TensorDataset, np.ndarray))

    def __iter__(self):
        if self.batch_sampler is None:            # batch_size=None: samples one by one, as given
            for idx in self.sampler:
                yield self.dataset[idx]
            return
        for indices in self.batch_sampler:
            yield self._fetch(indices)

    def _fetch(self, indices):
        if self._fast and len(indices):
            if isinstance(self.dataset, np.ndarray):
                return Tensor(self.dataset[np.asarray(indices, np.int64)])
            return self.dataset.batch(indices)
        return self.collate_fn([self.dataset[i] for i in indices])

    def __len__(self):
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)
