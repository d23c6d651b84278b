"""distbp.parallel: DistributedDataParallel (ddp.py, its Reducer in reducer.py, communication hooks
in comm_hooks.py) and ZeroRedundancyOptimizer (zero.py)."""
from distbp.parallel.comm_hooks import GradBucket, allreduce_hook, reduce_scatter_hook
from distbp.parallel.ddp import DistributedDataParallel
from distbp.parallel.zero import ZeroRedundancyOptimizer

__all__ = ["DistributedDataParallel", "ZeroRedundancyOptimizer", "GradBucket", "allreduce_hook",
           "reduce_scatter_hook"]
