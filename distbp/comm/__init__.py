"""distbp.comm: collectives on numpy arrays. Knows nothing about models.

    comm = distbp.comm.init()              # auto: mpi under mpiexec, local inside spawn, else single
    comm.allreduce(grad, op="sum")         # in place, returns grad
    work = comm.allreduce_async(bucket); ...; work.wait()
    comm.broadcast(params, root=0); comm.allgather(x); comm.barrier()
    comm.broadcast_object({"model": "cnn"}); comm.allgather_object(n_params)
    g = comm.empty(1 << 22, np.float32)    # symmetric memory: on one node peers read it in place
    results = distbp.comm.spawn(fn, nprocs=4)   # local multi-process world over shared memory

Backends: single.py (size 1), local.py (shared memory), mpi.py (mpi4py). allreduce on local and mpi
is the same code (ring.py) over two transports: recursive doubling up to 1 MiB, the ring above;
arrays from comm.empty skip the ring on one node (symmetric.py).
Benchmark: `distbp bench allreduce`.
"""
from distbp.comm.base import CommError, Communicator, Work
from distbp.comm.cpus import usable_cpus
from distbp.comm.launch import spawn
from distbp.comm.world import init

__all__ = ["CommError", "Communicator", "Work", "init", "spawn", "usable_cpus"]
