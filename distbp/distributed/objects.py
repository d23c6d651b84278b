"""torch.distributed's *_object collectives, carried as JSON (never pickled: a peer's bytes are
data, not code). An object that JSON would change on the way (a tuple, an int dict key, a numpy
scalar, a set) is refused on the sending rank with its path, instead of arriving different.

    dist.all_gather_object(out := [None] * world_size, {"loss": 0.25})
    objs = [cfg] if rank == 0 else [None]; dist.broadcast_object_list(objs, src=0)
"""
import math

from distbp.distributed.process_group import group_of

JSON_HELP = ("distbp sends objects as JSON, never pickled: use dicts with str keys, lists, str, "
             "int, float, bool and None (tuple -> list, numpy -> .tolist() or .item())")


def check_json(obj, what, path="obj"):
    """Raise TypeError naming the first part of `obj` that would not come back equal from JSON.
    Exact types: numpy.float64 is a float subclass, and would come back a plain float."""
    kind = type(obj)
    if obj is None or kind in (bool, int, str):
        return obj
    if kind is float:
        if not math.isfinite(obj):
            raise TypeError(f"{what}: {path} is {obj}, which JSON does not carry; {JSON_HELP}")
        return obj
    if kind is list:
        for i, v in enumerate(obj):
            check_json(v, what, f"{path}[{i}]")
        return obj
    if kind is dict:
        for k, v in obj.items():
            if type(k) is not str:
                raise TypeError(f"{what}: {path} has the key {k!r} ({type(k).__name__}), JSON keys "
                                f"are str; {JSON_HELP}")
            check_json(v, what, f"{path}[{k!r}]")
        return obj
    raise TypeError(f"{what}: {path} is a {kind.__name__}; {JSON_HELP}")


def all_gather_object(object_list, obj, group=None):
    comm = group_of(group)
    if len(object_list) != comm.size:
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries for a "
                         f"world of {comm.size}")
    object_list[:] = comm.allgather_object(check_json(obj, "all_gather_object", "obj"))


def gather_object(obj, object_gather_list=None, dst=0, group=None):
    comm = group_of(group)
    objs = comm.allgather_object(check_json(obj, "gather_object", "obj"))
    if comm.rank == dst:
        if object_gather_list is None or len(object_gather_list) != comm.size:
            raise ValueError(f"gather_object: rank {dst} needs an object_gather_list of "
                             f"{comm.size} entries")
        object_gather_list[:] = objs


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """object_list on every rank <- src's object_list (same length on every rank, as in torch)."""
    comm = group_of(group)
    mine = check_json(list(object_list), "broadcast_object_list", "object_list") \
        if comm.rank == src else None
    theirs = comm.broadcast_object(mine, root=src)
    if len(theirs) != len(object_list):
        raise ValueError(f"broadcast_object_list: rank {src} sent {len(theirs)} objects, rank "
                         f"{comm.rank}'s object_list has {len(object_list)} entries")
    object_list[:] = theirs


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None, src=0,
                        group=None):
    """scatter_object_output_list[0] <- src's scatter_object_input_list[rank]."""
    comm = group_of(group)
    mine = None
    if comm.rank == src:
        if scatter_object_input_list is None or len(scatter_object_input_list) != comm.size:
            raise ValueError(f"scatter_object_list: rank {src} needs {comm.size} input objects")
        mine = check_json(list(scatter_object_input_list), "scatter_object_list",
                        "scatter_object_input_list")
    scatter_object_output_list[0] = comm.broadcast_object(mine, root=src)[comm.rank]
