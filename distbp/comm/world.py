"""init(): pick a backend and build the communicator; the ordered list Horovod-style.

    comm = distbp.comm.init()          # "auto": mpi under mpiexec (size > 1), local inside
                                       # distbp.comm.spawn, else single
    comm = distbp.comm.init("mpi", algorithm="native")   # MPI_Allreduce instead of the ring
"""
import os

from distbp.comm import local

BACKENDS = ("auto", "single", "local", "mpi")
# Env vars MPI launchers set: MPICH/Hydra (PMI_*), Open MPI, MVAPICH, PMIx, Slurm's PMI2.
MPI_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
MPI_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")

_open = []  # communicators created by init in this process (closed by close_all)


def mpi_world_size():
    """World size announced by an MPI launcher's env vars, or 0 when not under one."""
    for var in MPI_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1 if any(v in os.environ for v in MPI_RANK_VARS) else 0


def detect():
    if os.environ.get(local.ENV_NAME):
        return "local"
    return "mpi" if mpi_world_size() > 1 else "single"


def init(backend="auto", timeout=None, debug=None, **options):
    """Return a Communicator. timeout: seconds to wait for a peer before CommError (default 30, or
    DISTBP_COMM_TIMEOUT). debug: check op/dtype/count on every rank before each collective (default:
    env DISTBP_COMM_DEBUG=1). options: backend-specific (mpi: algorithm="ring"|"native",
    transport="auto"|"shm"|"mpi", comm)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown comm backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = detect()
    if timeout is None:
        timeout = float(os.environ.get(local.ENV_TIMEOUT, 30.0))
    if backend == "single":
        from distbp.comm.single import SingleCommunicator
        comm = SingleCommunicator(timeout, debug)
    elif backend == "local":
        # One world per process: a second open communicator would race the first on the channels.
        for c in _open:
            if c.backend == "local" and not c._closed:
                raise RuntimeError("a local communicator is already open in this process; "
                                   "close() it first or reuse it")
        comm = local.LocalCommunicator(timeout, debug)
    else:
        from distbp.comm.mpi import MPICommunicator
        comm = MPICommunicator(timeout=timeout, debug=debug, **options)
        from distbp.comm import hierarchical    # several hosts with several ranks each: 2 levels
        comm = hierarchical.wrap(comm) or comm
    _open.append(comm)
    return comm


def close_all():
    while _open:
        _open.pop().close()
