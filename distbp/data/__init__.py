"""distbp.data: Parquet datasets, per-rank sharding and augmentation. Produces numpy arrays only.

    prepare("mnist1d", "data/mnist1d")                        # built-in -> Parquet (once)
    train = ParquetDataset("data/mnist1d", "train")           # footers only; rows read on demand
    loader = DistributedLoader(train, 128, rank, world_size, seed=0,
                               augment=build_augment([{"shift": 3}]))
    for batch in loader: ...                                  # batch.x (n_r, 1, 40), batch.y (n_r,)
    for batch in EvalLoader(ParquetDataset("data/mnist1d", "test"), 256, rank, world_size): ...
"""
from distbp.data.augment import (AUGMENTATIONS, Compose, GaussianNoise, RandomCrop, RandomFlip,
                                 RandomShift, build_augment)
from distbp.data.builtins import BUILTINS, prepare
from distbp.data.dataset import ArrayDataset
from distbp.data.loader import Batch, DistributedLoader, EvalLoader, split_sizes
from distbp.data.parquet import ParquetDataset, read_meta

__all__ = ["AUGMENTATIONS", "ArrayDataset", "BUILTINS", "Batch", "Compose", "DistributedLoader",
           "EvalLoader", "GaussianNoise", "ParquetDataset", "RandomCrop", "RandomFlip", "RandomShift",
           "build_augment", "prepare", "read_meta", "split_sizes"]
