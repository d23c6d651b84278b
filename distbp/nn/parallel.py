"""distbp.nn.parallel: where torch keeps DistributedDataParallel (the code is in distbp/parallel)."""
from distbp.parallel.ddp import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
