"""Worker functions for distbp.comm.spawn in the tests (spawned functions must be importable)."""
import os
import signal
import time

import numpy as np

import distbp.comm
from tests.comm import bodies


def run_bodies():
    return bodies.run_all(distbp.comm.init("local"))


def large_allreduce(n):
    """n float32 per rank: returns a checksum of the result and whether it is right."""
    comm = distbp.comm.init("local")
    x = np.full(n, comm.rank + 1, np.float32)
    x[::1000] = comm.rank
    comm.allreduce(x)
    total = sum(q + 1 for q in range(comm.size))
    ok = bool((x[1::1000] == total).all() and (x[::1000] == total - comm.size).all()
              and (x[-1] == (total if (n - 1) % 1000 else total - comm.size)))
    return {"ok": ok, "sum": float(x[:1_000_000].astype(np.float64).sum())}


def die_in_allreduce(victim, how):
    """Rank `victim` dies (or hangs) instead of joining an allreduce; the others are inside it."""
    comm = distbp.comm.init("local")
    if comm.rank == victim:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "exit":
            os._exit(3)
        elif how == "raise":
            raise ValueError(f"boom on rank {comm.rank}")
        time.sleep(60)  # "hang": stops answering
    t0 = time.monotonic()
    try:
        comm.allreduce(np.ones(1_000_000, np.float32))
    except distbp.comm.CommError as e:
        e.args = (f"{e.args[0]} [after {time.monotonic() - t0:.1f}s]",)
        raise
    return "unreachable"


def stop_in_allreduce(victim):
    """Rank `victim` stops itself (SIGSTOP: alive, silent, never scheduled) after a few collectives;
    the others wait for it in an all-reduce."""
    comm = distbp.comm.init("local")
    for i in range(3):
        comm.allreduce(np.ones(10), tag=f"step {i}")
    if comm.rank == victim:
        os.kill(os.getpid(), signal.SIGSTOP)
    comm.allreduce(np.ones(1000, np.float32), tag="bucket 1 of 1")


def signal_self(sig):
    """Rank 1 sends itself `sig` after three tagged collectives; returns what it recorded."""
    comm = distbp.comm.init("local")
    for i in range(3):
        comm.allreduce(np.ones(4), tag=f"step {i}")
    if comm.rank == 1:
        os.kill(os.getpid(), getattr(signal, sig))
    comm.barrier()
    return comm.flight.written


def mismatch(kind, debug):
    """Rank 1 calls another collective than the others at the same sequence number (another count,
    dtype, reduce op, broadcast root, or another collective altogether); then every rank calls a
    barrier, so a rank that finished the mismatched call first learns of it too. Returns the
    CommError each rank saw and how long it took."""
    comm = distbp.comm.init("local", debug=debug)
    comm.allreduce(np.ones(3), tag="warm-up")   # a matched call first: the mismatch is #2
    n, dtype, op, root = 10, np.float32, "sum", 0
    if comm.rank == 1:
        n, dtype, op, root = {"count": (12, dtype, op, root), "dtype": (n, np.float64, op, root),
                              "op": (n, dtype, "max", root), "root": (n, dtype, op, 1),
                              "other": (n, dtype, op, root)}[kind]
    t0 = time.monotonic()
    try:
        if kind == "root":
            comm.broadcast(np.ones(n, dtype), root=root)
        elif kind == "other" and comm.rank == 1:
            comm.barrier()
        else:
            comm.allreduce(np.ones(n, dtype), op=op, tag="bucket 2 of 5")
        comm.barrier()
    except distbp.comm.CommError as e:
        return {"error": str(e), "rank": e.rank, "op": e.op, "seconds": time.monotonic() - t0}
    return {"error": None}


def return_rank(offset=0):
    return distbp.comm.init("auto").rank + offset


def sleep_in_allreduce(path):
    """Every rank blocks in a collective that never completes (rank 0 never joins)."""
    comm = distbp.comm.init("local")
    with open(f"{path}.{comm.rank}", "w") as f:
        f.write(str(os.getpid()))
    if comm.rank == 0:
        time.sleep(600)
    comm.allreduce(np.ones(10))


def waiting_policy():
    """(polls, busy-wait seconds) of this rank's shared-memory transport."""
    t = distbp.comm.init("auto").transport
    return t.spin, t.spin_seconds


def sleeps_while_waiting(delay, times):
    """Rank 1 waits `delay` s in an all-reduce for rank 0, `times` times; -> how often it slept
    meanwhile (voluntary context switches), on rank 1 (None on the others)."""
    comm = distbp.comm.init("auto")
    slept = 0
    for _ in range(times):
        comm.barrier()
        if comm.rank == 0:
            time.sleep(delay)
        before = _voluntary_switches()
        comm.allreduce(np.ones(4))
        slept += _voluntary_switches() - before
    comm.barrier()
    return slept if comm.rank == 1 else None


def _voluntary_switches():
    with open("/proc/thread-self/status") as f:  # this thread: not the heartbeat's wake-ups
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt"))


def symmetric_mismatch(kind):
    """Rank 1 passes something else than rank 0 to a large collective on comm.empty() memory (or
    asks comm.empty for another size); returns the CommError each rank saw, fast or not."""
    comm = distbp.comm.init("local")
    n = 600_000  # 2.4 MB: above the small-message switch
    t0 = time.monotonic()
    try:
        if kind == "size":
            comm.empty(n + comm.rank, np.float32)
        else:
            a = comm.empty(2 * n, np.float32)
            if kind == "offset":
                x = a[comm.rank:comm.rank + n]
            else:  # "private": rank 1 passes a plain numpy array
                x = a[:n] if comm.rank == 0 else np.ones(n, np.float32)
            comm.allreduce(x)
    except distbp.comm.CommError as e:
        return {"error": str(e), "rank": e.rank, "seconds": time.monotonic() - t0}
    return {"error": None}


def die_in_symmetric_allreduce(victim):
    """Rank `victim` exits instead of joining an all-reduce of symmetric memory."""
    comm = distbp.comm.init("local")
    x = comm.empty(1_000_000, np.float32)
    if comm.rank == victim:
        os._exit(3)
    comm.allreduce(x)


def symmetric_lifetime():
    """comm.empty allocations live as long as the caller's views of them."""
    comm = distbp.comm.init("local")
    heap = comm.transport.heap
    a = comm.empty(1000, np.float32)
    view = a[10:]
    del a
    alive = len(heap._live)
    del view
    return alive, len(heap._live)
