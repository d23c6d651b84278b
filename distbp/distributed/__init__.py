"""distbp.distributed: torch.distributed's API on distbp's communicators.

    import distbp.distributed as dist
    dist.init_process_group()                  # the launcher's backend: distbp run, mpiexec, Ray
    rank, world_size = dist.get_rank(), dist.get_world_size()
    dist.all_reduce(t, op=dist.ReduceOp.AVG)   # Tensors and numpy arrays, in place
    dist.all_gather_object(out, {"loss": x})   # objects as JSON, never pickled
    dist.destroy_process_group()

process_group.py: init/destroy, the default group, rank facts. collectives.py: the tensor
collectives, ReduceOp, Work. objects.py: the object collectives. optim.py: ZeroRedundancyOptimizer.
"""
from distbp.distributed.collectives import (ReduceOp, Work, all_gather, all_gather_into_tensor,
                                            all_reduce, barrier, broadcast, gather, reduce,
                                            reduce_scatter, reduce_scatter_tensor, scatter)
from distbp.distributed.objects import (all_gather_object, broadcast_object_list, gather_object,
                                        scatter_object_list)
from distbp.distributed.process_group import (_get_default_group, destroy_process_group,
                                              get_backend, get_local_rank, get_node_local_rank,
                                              get_rank, get_world_size, init_process_group,
                                              is_available, is_initialized, is_mpi_available)

__all__ = [
    "ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
    "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "gather",
    "gather_object", "get_backend", "get_local_rank", "get_node_local_rank", "get_rank",
    "get_world_size", "init_process_group", "is_available", "is_initialized", "is_mpi_available",
    "reduce", "reduce_scatter", "reduce_scatter_tensor", "scatter", "scatter_object_list",
]
