"""distbp.data: Parquet datasets, per-rank sharding and augmentation. Produces numpy arrays only.

    prepare("mnist1d", "data/mnist1d")                        # built-in -> Parquet (once)
    train = ParquetDataset("data/mnist1d", "train")           # footers only; rows read on demand
    loader = DistributedLoader(train, 128, rank, world_size, seed=0,
                               augment=build_augment([{"shift": 3}]))
    for batch in loader: ...                                  # batch.x (n_r, 1, 40), batch.y (n_r,)
    for batch in EvalLoader(ParquetDataset("data/mnist1d", "test"), 256, rank, world_size): ...

The trainer goes through ensure_prepared(cfg["data"]) and open_split(cfg["data"], "train"), or
as_dataset(x) for data handed to it: a Dataset, an (x, y) pair of arrays, a map-style dataset.
"""
from distbp.data.augment import (AUGMENTATIONS, Compose, GaussianNoise, RandomCrop, RandomFlip,
                                 RandomShift, build_augment)
from distbp.data.builtins import BUILTINS, prepare
from distbp.data.config import build_augment_from, ensure_prepared, open_split
from distbp.data.dataset import ArrayDataset, Dataset, MapDataset, as_dataset
from distbp.data.loader import Batch, DistributedLoader, EvalLoader, split_sizes
from distbp.data.parquet import ParquetDataset, read_meta

__all__ = ["AUGMENTATIONS", "ArrayDataset", "BUILTINS", "Batch", "Compose", "Dataset", "MapDataset",
           "as_dataset", "build_augment_from",
           "DistributedLoader", "EvalLoader", "GaussianNoise", "ParquetDataset", "RandomCrop",
           "RandomFlip", "RandomShift", "build_augment", "ensure_prepared", "open_split", "prepare",
           "read_meta", "split_sizes"]
