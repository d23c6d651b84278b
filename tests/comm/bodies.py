"""The multi-rank test body, run unchanged under every backend (local spawn, mpiexec, single).

Each check takes a communicator, asserts, and returns how many things it checked; run_all returns
a JSON-able summary so the launcher (spawn or mpiexec) can compare ranks.
"""
import time

import numpy as np

DTYPES = [np.float32, np.float64, np.int32, np.int64]
OPS = {"sum": np.sum, "max": np.max, "min": np.min}


def rank_data(rank, n, dtype, salt=0):
    """Small integers, so float sums are exact and the expected result is unambiguous."""
    rng = np.random.default_rng(1000 * rank + 7 * n + salt)
    return rng.integers(-50, 50, n).astype(dtype)


def expected(size, n, dtype, op, salt=0):
    stack = np.stack([rank_data(q, n, dtype, salt) for q in range(size)])
    if op == "mean":
        return (stack.sum(0) / size).astype(dtype)
    return OPS[op](stack, axis=0).astype(dtype)


def lengths(size):
    """Empty, smaller than the world, not divisible by it, a few slots long."""
    return sorted({0, 1, max(0, size - 1), size + 1, 3 * size + 2, 1003, 300_001})


def check_allreduce(comm):
    k = 0
    for n in lengths(comm.size):
        for dtype in DTYPES:
            ops = list(OPS) + (["mean"] if np.dtype(dtype).kind == "f" else [])
            for op in ops:
                x = rank_data(comm.rank, n, dtype, salt=len(op))
                out = comm.allreduce(x, op=op)
                assert out is x, "allreduce must work in place and return its argument"
                want = expected(comm.size, n, dtype, op, salt=len(op))
                assert x.dtype == dtype and np.array_equal(x, want), (n, dtype, op, x[:5], want[:5])
                k += 1
    return k


def small_bytes(comm):
    """The all-reduce size up to which the transport takes ring.allreduce_small (0: none)."""
    return getattr(comm.transport, "small_bytes", 0) if comm.transport is not None else 0


def threshold_lengths(comm, dtype):
    """Element counts just below, at and just above the small-message switch."""
    k = small_bytes(comm) // np.dtype(dtype).itemsize
    return [k - 1, k, k + 1] if k > 1 else []


def check_allreduce_around_switch(comm):
    """Both algorithms, at the sizes where they meet: every dtype and op, exact results."""
    k = 0
    for dtype in DTYPES:
        for n in threshold_lengths(comm, dtype):
            for op in list(OPS) + (["mean"] if np.dtype(dtype).kind == "f" else []):
                x = rank_data(comm.rank, n, dtype, salt=len(op) + 1)
                comm.allreduce(x, op=op)
                want = expected(comm.size, n, dtype, op, salt=len(op) + 1)
                assert np.array_equal(x, want), (n, dtype, op, x[:5], want[:5])
                k += 1
    return k


def check_identical_bits(comm):
    """Random float sums depend on order; every rank must still hold the very same bits, on both
    sides of the small-message switch, for sum and mean (and max/min of signed zeros)."""
    k = 0
    lengths = [5, 1003, 100_003] + threshold_lengths(comm, np.float32)
    for dtype in (np.float32, np.float64):
        for n in lengths:
            for op in ("sum", "mean"):
                x = np.random.default_rng(comm.rank + n).standard_normal(n).astype(dtype)
                comm.allreduce(x, op=op)
                bits = x.view(np.uint32 if dtype == np.float32 else np.uint64)
                rows = comm.allgather(bits)
                assert all(np.array_equal(rows[0], rows[q]) for q in range(comm.size)), \
                    f"ranks differ in bits ({n} x {np.dtype(dtype).name}, {op})"
                ref = np.stack([np.random.default_rng(q + n).standard_normal(n).astype(dtype)
                                for q in range(comm.size)]).astype(np.float64).sum(0)
                ref /= comm.size if op == "mean" else 1
                assert np.allclose(x, ref, rtol=1e-5, atol=1e-4)
                k += 1
    for op in ("max", "min"):  # -0.0 == 0.0: which one a rank keeps must not depend on the rank
        z = np.full(7, -0.0 if comm.rank % 2 else 0.0, np.float32)
        comm.allreduce(z, op=op)
        rows = comm.allgather(z.view(np.uint32))
        assert all(np.array_equal(rows[0], rows[q]) for q in range(comm.size)), f"signed zeros, {op}"
        k += 1
    return k


def check_repeated(comm):
    x = np.zeros(5000, np.int64)
    for i in range(20):  # state must not leak from one call into the next
        x[:] = comm.rank + i
        comm.allreduce(x)
        assert (x == sum(q + i for q in range(comm.size))).all(), i
    return 20


def check_async(comm):
    size, works, arrays = comm.size, [], []
    for i, n in enumerate([10, 700_000, 0, 33, 250_000]):
        arrays.append(np.full(n, comm.rank + i, np.float64))
        works.append(comm.allreduce_async(arrays[-1], op="max" if i % 2 else "sum"))
    y = comm.allreduce(np.ones(3, np.int32))  # a sync call queued behind the async ones
    assert (y == size).all()
    for i, w in reversed(list(enumerate(works))):  # waited out of order
        out = w.wait()
        assert out is arrays[i]
        want = (size - 1 + i) if i % 2 else sum(q + i for q in range(size))
        assert (out == want).all(), (i, out[:3], want)
    return len(works) + 1 + check_background_progress(comm)


def check_background_progress(comm):
    """An async allreduce completes while the caller never waits (it overlaps with compute)."""
    x = np.full(200_000, comm.rank, np.float32)
    work = comm.allreduce_async(x)
    deadline = time.monotonic() + 10
    while not work.is_completed():  # stands in for backward compute that never calls into comm
        assert time.monotonic() < deadline, "async allreduce made no progress in the background"
        time.sleep(0.001)
    assert (work.wait() == sum(range(comm.size))).all()
    return 1


def check_reduce_scatter_allgather_into(comm):
    """The two halves of the ring all-reduce as collectives of their own (a sharded optimizer's
    gradients and parameters): the shard each rank owns, exact results, in place, async, and an
    all-gather that leaves every rank with the owners' bits."""
    k = 0
    for n in lengths(comm.size):
        bounds = [comm.shard_bounds(n, q) for q in range(comm.size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n and all(
            bounds[q][1] == bounds[q + 1][0] for q in range(comm.size - 1)), bounds
        lo, hi = comm.shard_bounds(n)
        for dtype in DTYPES:
            for op in list(OPS) + (["mean"] if np.dtype(dtype).kind == "f" else []):
                x = rank_data(comm.rank, n, dtype, salt=len(op) + 2)
                shard = comm.reduce_scatter(x, op=op)
                want = expected(comm.size, n, dtype, op, salt=len(op) + 2)
                assert shard.base is x or shard.size == 0 or np.shares_memory(shard, x)
                assert shard.size == hi - lo and np.array_equal(x[lo:hi], want[lo:hi]), (n, dtype, op)
                x[:lo] = -1     # garbage outside my shard: allgather_into must overwrite it
                x[hi:] = -1
                assert comm.allgather_into(x) is x
                assert np.array_equal(x, want), (n, dtype, op, x[:5], want[:5])
                k += 1
    x = np.random.default_rng(comm.rank).standard_normal(100_003).astype(np.float32)
    work = comm.reduce_scatter_async(x)
    lo, hi = comm.shard_bounds(x.size)
    assert work.wait().size == hi - lo
    comm.allgather_into_async(x).wait()
    rows = comm.allgather(x.view(np.uint32))
    assert all(np.array_equal(rows[0], rows[q]) for q in range(comm.size)), "ranks differ in bits"
    ref = np.stack([np.random.default_rng(q).standard_normal(100_003).astype(np.float32)
                    for q in range(comm.size)]).astype(np.float64).sum(0)
    assert np.allclose(x, ref, rtol=1e-5, atol=1e-4)
    return k + 1


def direct(comm, nbytes):
    """Whether an array of nbytes in symmetric memory takes the direct path on this backend."""
    heap = getattr(comm.transport, "heap", None)
    return heap is not None and comm.size > 1 and nbytes > small_bytes(comm)


def check_symmetric(comm):
    """Arrays from comm.empty (symmetric memory): where the ranks share memory, large ones are read
    from the peers' copies directly (symmetric.py) instead of going around the ring. Exact results
    for every dtype and op at sizes on both sides of the switch, views at the same offset, the
    reduce-scatter and all-gather halves, async calls mixed with private arrays, identical bits."""
    k = 0
    for n in sorted({1003, 300_001} | set(threshold_lengths(comm, np.float32))):
        for dtype in DTYPES:
            for op in list(OPS) + (["mean"] if np.dtype(dtype).kind == "f" else []):
                x = comm.empty(n, dtype)
                assert x.shape == (n,) and x.dtype == dtype and not x.any()
                x[:] = rank_data(comm.rank, n, dtype, salt=len(op) + 3)
                assert comm.allreduce(x, op=op) is x
                took = getattr(comm.transport, "direct", None) is not None
                assert took == direct(comm, x.nbytes), (n, dtype, "direct path taken" if took else "ring")
                assert np.array_equal(x, expected(comm.size, n, dtype, op, salt=len(op) + 3)), (n, dtype, op)
                k += 1
    big = comm.empty((3, 200_001), np.float64)      # a view of it, the same on every rank
    view = big[1]
    view[:] = rank_data(comm.rank, view.size, np.float64, salt=9)
    comm.allreduce(view, op="max")
    assert np.array_equal(view, expected(comm.size, view.size, np.float64, "max", salt=9))
    assert not big[0].any() and not big[2].any(), "an all-reduce of a view wrote outside it"
    n = 400_003
    lo, hi = comm.shard_bounds(n)
    g = comm.empty(n, np.float32)
    g[:] = rank_data(comm.rank, n, np.float32, salt=11)
    want = expected(comm.size, n, np.float32, "sum", salt=11)
    assert np.array_equal(comm.reduce_scatter(g), want[lo:hi])
    g[:lo], g[hi:] = -1, -1
    assert comm.allgather_into(g) is g and np.array_equal(g, want)
    a, b = comm.empty(500_000, np.float32), np.full(500_000, comm.rank, np.float32)
    a[:] = comm.rank
    works = [comm.allreduce_async(a), comm.allreduce_async(b, op="max"), comm.reduce_scatter_async(a)]
    [w.wait() for w in works]
    total, (lo, hi) = sum(range(comm.size)), comm.shard_bounds(a.size)
    assert (b == comm.size - 1).all() and (a[lo:hi] == comm.size * total).all()
    s = comm.empty(300_007, np.float32)
    s[:] = np.random.default_rng(comm.rank).standard_normal(s.size)
    comm.allreduce(s)
    rows = comm.allgather(s.view(np.uint32))
    assert all(np.array_equal(rows[0], rows[q]) for q in range(comm.size)), "ranks differ in bits"
    return k + 5


def check_broadcast_allgather(comm):
    k = 0
    for root in range(comm.size):
        x = np.arange(12, dtype=np.float32).reshape(3, 4) + (comm.rank * 100)
        assert comm.broadcast(x, root=root) is x
        assert np.array_equal(x, np.arange(12, dtype=np.float32).reshape(3, 4) + root * 100)
        k += 1
    big = np.full(600_000, comm.rank, np.int32)
    comm.broadcast(big, root=comm.size - 1)
    assert (big == comm.size - 1).all()
    g = comm.allgather(np.full((2, 3), comm.rank, np.int64))
    assert g.shape == (comm.size, 2, 3) and all((g[q] == q).all() for q in range(comm.size))
    assert comm.allgather(np.empty(0, np.float32)).shape == (comm.size, 0)
    comm.barrier()
    return k + 3


def check_objects(comm):
    meta = {"model": "cnn", "params": 1234, "rank": comm.rank, "layers": ["conv", "fc"]}
    got = comm.broadcast_object(meta if comm.rank == 0 else None)
    assert got == {**meta, "rank": 0}
    every = comm.allgather_object({"rank": comm.rank, "text": "x" * comm.rank})
    assert every == [{"rank": q, "text": "x" * q} for q in range(comm.size)]
    gathered = comm.gather_object(comm.rank * 2, root=0)
    assert gathered == ([2 * q for q in range(comm.size)] if comm.rank == 0 else None)
    return 3


CHECKS = [check_allreduce, check_allreduce_around_switch, check_identical_bits, check_repeated, check_async,
          check_reduce_scatter_allgather_into, check_symmetric, check_broadcast_allgather, check_objects]


def run_all(comm):
    counts = {check.__name__: check(comm) for check in CHECKS}
    return {"rank": comm.rank, "size": comm.size, "backend": comm.backend, "counts": counts}
