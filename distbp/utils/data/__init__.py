"""distbp.utils.data, as torch.utils.data: datasets, samplers and the DataLoader for your own script.

    from distbp.utils.data import DataLoader, TensorDataset
    from distbp.utils.data.distributed import DistributedSampler
    ds = TensorDataset(x, y)                              # numpy arrays or Tensors, one row a sample
    sampler = DistributedSampler(ds, shuffle=True, seed=0)   # this rank's share, torch's order
    loader = DataLoader(ds, batch_size=64, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader: ...                           # Tensors (64, ...) and (64,)

For world-size invariant training (the same global batches for any number of ranks, resumable at
any step) use distbp.data.DistributedLoader instead: see docs/api.md.
"""
from distbp.utils.data.dataloader import DataLoader, default_collate
from distbp.utils.data.dataset import Dataset, Subset, TensorDataset, random_split
from distbp.utils.data.distributed import DistributedSampler
from distbp.utils.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                                       SubsetRandomSampler)

__all__ = ["BatchSampler", "DataLoader", "Dataset", "DistributedSampler", "RandomSampler",
           "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "default_collate", "random_split"]
