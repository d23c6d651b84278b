"""torch.distributed's tensor collectives on distbp Tensors and numpy arrays, in place.

    dist.all_reduce(t, op=dist.ReduceOp.AVG)          # t: Tensor or ndarray, changed in place
    work = dist.all_reduce(g, async_op=True); ...; work.wait()
    dist.broadcast(t, src=0); dist.all_gather(out_list, t); dist.reduce_scatter(out, in_list)

Each call is one Communicator call on the group (default: init_process_group's). A Tensor's
`.data` is the array that changes; an array that is not C-contiguous is reduced through a copy
that is written back (after wait() when async).
"""
import datetime
import enum

import numpy as np

from distbp.distributed.process_group import group_of
from distbp.tensor import Tensor


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "mean"
    MAX = "max"
    MIN = "min"


def _op(op):
    if isinstance(op, ReduceOp):
        return op.value
    raise TypeError(f"op must be a dist.ReduceOp (SUM, AVG, MAX, MIN), got {op!r}")


def _array(t, what):
    if isinstance(t, Tensor):
        t = t.data
    if not isinstance(t, np.ndarray):
        raise TypeError(f"{what} needs a distbp Tensor or a numpy array, got {type(t).__name__}")
    if not t.flags.writeable:
        raise ValueError(f"{what} works in place and got a read-only array (shape {t.shape}); "
                         "pass a writeable copy")
    return t


class Work:
    """What an async_op=True collective returns: wait() blocks until done, then returns True."""

    def __init__(self, inner=None, finish=None):
        self._inner, self._finish = inner, finish

    def is_completed(self):
        return self._inner is None or self._inner.is_completed()

    def wait(self, timeout=None):
        if isinstance(timeout, datetime.timedelta):
            timeout = timeout.total_seconds()
        if self._inner is not None:
            self._inner.wait(timeout)
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()
        return True


def _done(async_op):
    return Work() if async_op else None


def _in_place(arr, run, async_op):
    """run(contiguous array) (a comm Work when async_op); copy back into a non-contiguous `arr`."""
    buf = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    finish = None if buf is arr else (lambda: np.copyto(arr, buf))
    inner = run(buf)
    if async_op:
        return Work(inner, finish)
    if finish:
        finish()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    comm, o, arr = group_of(group), _op(op), _array(tensor, "all_reduce")
    run = comm.allreduce_async if async_op else comm.allreduce
    return _in_place(arr, lambda b: run(b, op=o), async_op)


def reduce(tensor, dst=0, op=ReduceOp.SUM, group=None, async_op=False):
    """The reduction lands in `dst`'s tensor; the others' tensors are left unchanged."""
    comm, o, arr = group_of(group), _op(op), _array(tensor, "reduce")
    out = np.ascontiguousarray(arr).copy()
    comm.allreduce(out, op=o)
    if comm.rank == dst:
        np.copyto(arr, out)
    return _done(async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    comm, arr = group_of(group), _array(tensor, "broadcast")
    _in_place(arr, lambda b: comm.broadcast(b, root=src), False)
    return _done(async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[i] <- rank i's tensor (every rank's tensor has the same shape and dtype)."""
    comm = group_of(group)
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    if len(tensor_list) != comm.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} entries for a world of "
                         f"{comm.size}")
    rows = comm.allgather(np.ascontiguousarray(arr))
    for out, row in zip(tensor_list, rows):
        np.copyto(_array(out, "all_gather's tensor_list"), row)
    return _done(async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """output (world_size * n, ...) <- every rank's input (n, ...) concatenated in rank order."""
    comm, out = group_of(group), _array(output_tensor, "all_gather_into_tensor")
    arr = input_tensor.data if isinstance(input_tensor, Tensor) else input_tensor
    rows = comm.allgather(np.ascontiguousarray(arr))
    if out.size != rows.size:
        raise ValueError(f"all_gather_into_tensor: output has {out.size} elements, world_size * "
                         f"input is {rows.size}")
    np.copyto(out, rows.reshape(out.shape))
    return _done(async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """output <- the reduction over ranks of input_list[rank] (the entries share one shape)."""
    comm = group_of(group)
    if len(input_list) != comm.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} entries for a world of "
                         f"{comm.size}")
    arrays = [x.data if isinstance(x, Tensor) else np.asarray(x) for x in input_list]
    return _reduce_scatter(comm, output, np.concatenate([a.reshape(-1) for a in arrays]), op,
                           async_op, "reduce_scatter")


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """output (n, ...) <- the reduction over ranks of rows [rank*n, (rank+1)*n) of input."""
    comm = group_of(group)
    arr = input.data if isinstance(input, Tensor) else input
    return _reduce_scatter(comm, output, np.array(arr, copy=True).reshape(-1), op, async_op,
                           "reduce_scatter_tensor")


def _reduce_scatter(comm, output, flat, op, async_op, what):
    out, o = _array(output, what), _op(op)
    if flat.size != out.size * comm.size:
        raise ValueError(f"{what}: input has {flat.size} elements, world_size * output is "
                         f"{out.size * comm.size}")
    # Equal shards: comm.shard_bounds(size * n) is [rank * n, (rank + 1) * n).
    finish = lambda: np.copyto(out, flat[comm.rank * out.size:(comm.rank + 1) * out.size]
                               .reshape(out.shape))
    if async_op:
        return Work(comm.reduce_scatter_async(flat, op=o), finish)
    comm.reduce_scatter(flat, op=o)
    finish()
    return None


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False):
    comm = group_of(group)
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    rows = comm.allgather(np.ascontiguousarray(arr))
    if comm.rank == dst:
        if gather_list is None or len(gather_list) != comm.size:
            raise ValueError(f"gather: rank {dst} needs a gather_list of {comm.size} tensors")
        for out, row in zip(gather_list, rows):
            np.copyto(_array(out, "gather's gather_list"), row)
    return _done(async_op)


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False):
    comm, out = group_of(group), _array(tensor, "scatter")
    buf = np.empty((comm.size,) + out.shape, out.dtype)
    if comm.rank == src:
        if scatter_list is None or len(scatter_list) != comm.size:
            raise ValueError(f"scatter: rank {src} needs a scatter_list of {comm.size} tensors")
        for i, x in enumerate(scatter_list):
            buf[i] = x.data if isinstance(x, Tensor) else x
    comm.broadcast(buf, root=src)
    np.copyto(out, buf[comm.rank])
    return _done(async_op)


def barrier(group=None, async_op=False, device_ids=None):
    group_of(group).barrier()
    return _done(async_op)
