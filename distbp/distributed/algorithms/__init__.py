"""distbp.distributed.algorithms: torch.distributed.algorithms' layout (ddp_comm_hooks)."""
