"""distbp.nn.parallel, as torch.nn.parallel.

    from distbp.nn.parallel import DistributedDataParallel as DDP
    model = DDP(model)              # the default process group (dist.init_process_group())
"""
from distbp.parallel.ddp import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
