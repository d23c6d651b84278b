"""The distbp.distributed checks, run unchanged on 1 rank (in the test process) and on 2-3 ranks
(distbp.comm.spawn). Each rank's data are small integers, so every float sum is exact."""
import numpy as np

import distbp
import distbp.distributed as dist

OPS = {dist.ReduceOp.SUM: np.sum, dist.ReduceOp.MAX: np.max, dist.ReduceOp.MIN: np.min,
       dist.ReduceOp.AVG: np.mean}


def data(rank, shape=(3, 4), dtype=np.float64):
    rng = np.random.default_rng(rank)
    return rng.integers(-9, 9, shape).astype(dtype)


def world(size, shape=(3, 4), dtype=np.float64):
    return np.stack([data(r, shape, dtype) for r in range(size)])


def check_all_reduce(rank, size):
    for op, fn in OPS.items():
        x = data(rank)
        assert dist.all_reduce(x, op=op) is None
        np.testing.assert_array_equal(x, fn(world(size), axis=0))
        t = distbp.tensor(data(rank))                       # a Tensor: its .data changes
        dist.all_reduce(t, op=op)
        np.testing.assert_array_equal(t.data, fn(world(size), axis=0))
    base = data(rank, (3, 8))
    view = base[:, ::2]                                     # not contiguous: through a copy
    work = dist.all_reduce(view, async_op=True)
    assert work.wait() is True
    np.testing.assert_array_equal(base[:, ::2], world(size, (3, 8)).sum(0)[:, ::2])
    np.testing.assert_array_equal(base[:, 1::2], data(rank, (3, 8))[:, 1::2])


def check_broadcast_gather(rank, size):
    for src in range(size):
        x = data(rank)
        dist.broadcast(x, src=src)
        np.testing.assert_array_equal(x, data(src))
    outs = [np.zeros((3, 4)) for _ in range(size)]
    dist.all_gather(outs, distbp.tensor(data(rank)))
    np.testing.assert_array_equal(np.stack(outs), world(size))
    out = np.zeros((3 * size, 4))
    dist.all_gather_into_tensor(out, data(rank))
    np.testing.assert_array_equal(out, world(size).reshape(-1, 4))
    got = [np.zeros((3, 4)) for _ in range(size)] if rank == size - 1 else None
    dist.gather(data(rank), got, dst=size - 1)
    if got is not None:
        np.testing.assert_array_equal(np.stack(got), world(size))
    mine = np.zeros((3, 4))
    dist.scatter(mine, [data(10 + r) for r in range(size)] if rank == 0 else None, src=0)
    np.testing.assert_array_equal(mine, data(10 + rank))


def check_reduce_scatter(rank, size):
    inputs = [data(rank * size + j, (2, 3)) for j in range(size)]
    out = distbp.tensor(np.zeros((2, 3)))
    dist.reduce_scatter(out, inputs, op=dist.ReduceOp.MAX)
    expect = np.max([data(q * size + rank, (2, 3)) for q in range(size)], axis=0)
    np.testing.assert_array_equal(out.data, expect)
    big = data(rank, (2 * size, 3))
    out = np.zeros((2, 3))
    dist.reduce_scatter_tensor(out, big, async_op=True).wait()
    np.testing.assert_array_equal(out, world(size, (2 * size, 3)).sum(0)[2 * rank:2 * rank + 2])
    x = data(rank)
    dist.reduce(x, dst=0)
    np.testing.assert_array_equal(x, world(size).sum(0) if rank == 0 else data(rank))


def check_objects(rank, size):
    out = [None] * size
    dist.all_gather_object(out, {"rank": rank, "name": f"r{rank}", "xs": [rank, 0.5, None]})
    assert out == [{"rank": r, "name": f"r{r}", "xs": [r, 0.5, None]} for r in range(size)]
    objs = [{"lr": 0.1}, "cnn", 3] if rank == 0 else [None, None, None]
    dist.broadcast_object_list(objs, src=0)
    assert objs == [{"lr": 0.1}, "cnn", 3]
    got = [None] * size if rank == 0 else None
    dist.gather_object(rank * 10, got, dst=0)
    assert got is None or got == [r * 10 for r in range(size)]
    mine = [None]
    dist.scatter_object_list(mine, [f"to {r}" for r in range(size)] if rank == 0 else None)
    assert mine == [f"to {rank}"]
    for bad, culprit in (((1, 2), "obj is a tuple"), ({1: "a"}, "has the key 1 (int)"),
                         ({"x": np.float64(1.0)}, "obj['x'] is a float64"),
                         ({"f": lambda: 0}, "obj['f'] is a function")):
        try:
            dist.all_gather_object(out, bad)
        except TypeError as e:
            assert culprit in str(e) and "never pickled" in str(e), str(e)
        else:
            raise AssertionError(f"{bad!r} was sent")
    dist.barrier()


def run_all(rank=None):
    """Init, every check, destroy; returns what rank facts the process saw."""
    dist.init_process_group()
    r, n = dist.get_rank(), dist.get_world_size()
    assert rank is None or rank == r
    for check in (check_all_reduce, check_broadcast_gather, check_reduce_scatter, check_objects):
        check(r, n)
    facts = {"rank": r, "size": n, "local_rank": dist.get_local_rank(),
             "backend": dist.get_backend(), "group": repr(dist._get_default_group())}
    dist.destroy_process_group()
    assert not dist.is_initialized()
    return facts


def rank_and_args(rank, *args):
    """spawn's contract: fn(rank, *args), rank equal to the world's."""
    dist.init_process_group()
    try:
        return [rank, dist.get_rank(), *args]
    finally:
        dist.destroy_process_group()
