"""The default process group: which launcher started this process, and the Communicator it gives.

    dist.init_process_group()        # backend=None: read the launcher's environment, in this order
        DISTBP_RAY_GROUP set     -> "ray"    (distbp run --backend ray: the script runs in Ray actors)
        DISTBP_LOCAL_SHM set     -> "local"  (distbp run / distbp.comm.spawn: shared memory)
        MPI launcher env vars    -> "mpi"    (mpiexec -n N python script.py)
        otherwise                -> "single" (plain `python script.py`: a world of one)

The group *is* a distbp Communicator (distbp/comm/base.py); DistributedDataParallel, sync batch-norm
and ZeroRedundancyOptimizer take it from `_get_default_group()` when none is passed.
"""
import datetime
import os
import socket

from distbp.comm import world
from distbp.comm.local import ENV_NAME as LOCAL_ENV

BACKENDS = ("local", "mpi", "ray", "single")
RAY_ENV = "DISTBP_RAY_GROUP"        # the Ray launcher's rendezvous actor name (distbp/ray/collective.py)

_default = None                     # the Communicator init_process_group stored
_local_rank = 0


def _launcher_backend():
    if os.environ.get(RAY_ENV):
        return "ray"
    if os.environ.get(LOCAL_ENV):
        return "local"
    if world.mpi_world_size() > 1:
        return "mpi"
    size = os.environ.get("WORLD_SIZE", "1")
    if size.isdigit() and int(size) > 1:
        raise RuntimeError(f"WORLD_SIZE={size} but no distbp launcher started this process: run the "
                           "script with `distbp run --nproc-per-node N`, `mpiexec -n N` or "
                           "`distbp run --backend ray` (torchrun's rendezvous is not a distbp backend)")
    return "single"


def _seconds(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return float(timeout)


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Join the world the launcher made. backend None (or "gloo", torch's CPU backend) takes the
    launcher's; "local", "mpi", "ray" or "single" insist on one. world_size and rank, if given, must
    agree with the launcher's (they cannot choose a world: the launcher did). timeout: seconds or a
    timedelta a collective waits for a peer before raising CommError (default 30, or
    DISTBP_COMM_TIMEOUT)."""
    global _default, _local_rank
    if _default is not None:
        raise RuntimeError("trying to initialize the default process group twice; call "
                           "destroy_process_group() first")
    if init_method not in (None, "env://") or store is not None:
        raise ValueError(f"init_process_group: init_method={init_method!r} / store are torch's "
                         "rendezvous; distbp's launchers (distbp run, mpiexec, Ray) set the world up")
    found = _launcher_backend()
    if backend in (None, "gloo"):
        backend = found
    elif backend == "nccl":
        raise ValueError("init_process_group(backend='nccl'): distbp runs on CPUs; pass backend=None "
                         "to use the launcher's backend")
    elif backend not in BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; choose one of None, "
                         f"{', '.join(BACKENDS)}")
    elif backend != found:
        raise RuntimeError(f"init_process_group(backend={backend!r}) but this process was started "
                           f"for backend {found!r}; pass backend=None")
    seconds = _seconds(timeout)
    if backend == "ray":
        from distbp.ray.collective import RayGroup
        comm = RayGroup.from_env(timeout=seconds)
    else:
        comm = world.init(backend, timeout=seconds)
    for what, given, actual in (("world_size", world_size, comm.size), ("rank", rank, comm.rank)):
        if given not in (-1, None) and given != actual:
            comm.close()
            raise ValueError(f"init_process_group({what}={given}) disagrees with the launcher's "
                             f"{what} {actual}; leave it out")
    _default, _local_rank = comm, _find_local_rank(comm)
    return None


def _find_local_rank(comm):
    """LOCAL_RANK as the launcher set it, else this rank's position among the ranks on its host."""
    if os.environ.get("LOCAL_RANK", "").isdigit():
        return int(os.environ["LOCAL_RANK"])
    if comm.size == 1:
        return 0
    hosts = comm.allgather_object(socket.gethostname())
    return hosts[:comm.rank].count(hosts[comm.rank])


def _get_default_group():
    if _default is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to "
                           "call init_process_group()")
    return _default


def group_of(group):
    """The communicator a collective runs on: the default group, or a Communicator passed in."""
    if group is None:
        return _get_default_group()
    if hasattr(group, "allreduce") and hasattr(group, "rank"):
        return group
    raise TypeError(f"group must be None (the default group) or a distbp Communicator, got "
                    f"{type(group).__name__}; distbp has no sub-groups (new_group)")


def is_initialized():
    return _default is not None


def is_available():
    return True


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def get_backend(group=None):
    return group_of(group).backend


def get_rank(group=None):
    """This process's rank; -1 before init_process_group, as torch returns for a non-member."""
    if group is None and _default is None:
        return -1
    return group_of(group).rank


def get_world_size(group=None):
    if group is None and _default is None:
        return -1
    return group_of(group).size


def get_local_rank():
    """This rank's index among the ranks on its machine (LOCAL_RANK under distbp run)."""
    _get_default_group()
    return _local_rank


def get_node_local_rank(fallback_rank=None):
    """torch's name: LOCAL_RANK, else the local rank found at init, else fallback_rank."""
    if os.environ.get("LOCAL_RANK", "").isdigit():
        return int(os.environ["LOCAL_RANK"])
    if _default is not None:
        return _local_rank
    if fallback_rank is not None:
        return fallback_rank
    raise RuntimeError("LOCAL_RANK is not set and the process group is not initialized")


def destroy_process_group(group=None):
    """Close the default group (its communication thread and shared memory mappings)."""
    global _default, _local_rank
    if group is not None and group is not _default:
        group.close()
        return
    if _default is not None:
        _default.close()
    _default, _local_rank = None, 0
