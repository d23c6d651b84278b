"""DDP communication hooks with torch.distributed.algorithms.ddp_comm_hooks' names.

    from distbp.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
    ddp.register_comm_hook(comm, default_hooks.bf16_compress_hook)        # state: the group
    state = powerSGD_hook.PowerSGDState(process_group=comm, matrix_approximation_rank=2,
                                        start_powerSGD_iter=10)
    ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)

How they differ from torch's (a bucket here is pre-weighted, so a plain sum is the result): see
each module's docstring; `distbp train` uses them through dist.compression (docs/ddp.md).
"""
from distbp.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

__all__ = ["default_hooks", "powerSGD_hook"]
