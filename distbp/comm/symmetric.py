"""Symmetric memory on one node: arrays every rank allocates together, each rank able to read every
other rank's copy, and the collectives that read peers' copies directly (torch's symm_mem).

    g = comm.empty(4 << 20, np.float32)   # collective: every rank, same order, same shape and dtype
    g[:] = grads
    comm.allreduce(g)                     # > small_bytes: two-shot over the peers' copies, no slots

Why: the ring over private numpy arrays (ring.py) copies every byte twice on its way between two
processes, into a slot of the shared segment and out of it. When the array itself lives in shared
memory a rank reads its peers' copies where they are: a reduce-scatter is one op(peer, mine) pass
over its 1/N chunk, an all-gather one copy per byte. At N=2, 16 MB per rank, on the 2-core VM this
halves the passes over memory (benchmarks/results/allreduce.md, session 7).

Layout: allocation k of a world is the file /dev/shm/<segment>.sym<k> holding `size` regions of
`stride` bytes (rank q's copy at q * stride); every rank maps the whole file, then it is unlinked
(the launcher also removes leftovers of a world that died mid-allocation).

The collectives (two-shot, as NCCL and torch's symmetric-memory all-reduce do within a node), for
rank r owning chunk r (ring.chunk_bounds, the same shards as the ring's):

    sync (every rank has entered with its data)     -> reduce: chunk r = op over ranks 0..N-1, in
    rank order, read from each rank's copy            -> sync (nobody reads the chunks I will
    overwrite)                                        -> gather: copy chunk q from rank q, for q != r
    -> sync (nobody still reads my chunk r when I return and the caller writes to it)

Each chunk is reduced by one rank and copied to the others, so every rank ends with the same bits.
The syncs (ShmTransport.sync) also compare every rank's descriptor (allocation, offset, bytes): a
rank that passes another buffer, or a private array while its peers pass a symmetric one, gets a
CommError naming the peer instead of a wrong result.
"""
import mmap
import os
import weakref

import numpy as np

from distbp.comm import ring

SEGMENT = 256 << 10  # a rank r >= 2 reduces into a scratch of this size (its own copy is an operand)


def _round(n, to=4096):
    return -(-max(n, 1) // to) * to


class SymmetricHeap:
    """The symmetric allocations of one ShmTransport (its rank, size and segment name)."""

    def __init__(self, transport, name):
        self.t, self.name = transport, name
        self._count = 0
        self._live = {}  # allocation id -> (address of my copy, nbytes, stride, weakref to the mapping)

    def path(self, k):
        return f"/dev/shm/{self.name}.sym{k}"

    def empty(self, shape, dtype):
        """Collective: a zero-filled array of `shape`/`dtype` in a new symmetric allocation."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        t = self.t
        self._count += 1
        k = self._count
        stride = _round(nbytes)
        t.op = "comm.empty"
        t.declare(-k, 0, nbytes)  # checked at the sync: every rank must ask for the same bytes
        fd = os.open(self.path(k), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < stride * t.size:
                os.ftruncate(fd, stride * t.size)  # every rank truncates to the same size: idempotent
            mm = mmap.mmap(fd, stride * t.size)
        finally:
            os.close(fd)
        try:
            t.sync(check=True)
            t.sync()  # a peer's descriptor stays put until every rank has checked it
        except BaseException:
            mm.close()
            raise
        if t.rank == 0:
            os.unlink(self.path(k))  # every rank has mapped it
        mine = np.frombuffer(mm, dtype, count, t.rank * stride).reshape(shape)
        # Every view of `mine` keeps the mapping alive; I keep only a weak reference, so the memory
        # goes with the caller's last view and the allocation is forgotten then.
        self._live[k] = (mine.__array_interface__["data"][0], nbytes, stride,
                         weakref.ref(mm, lambda _, k=k: self._live.pop(k, None)))
        return mine

    def lookup(self, flat):
        """(descriptor, every rank's view) if `flat` lies in one of my allocations, else None.
        The descriptor (allocation id, byte offset, bytes) must be the same on every rank."""
        if not self._live or flat.nbytes == 0:
            return None
        addr = flat.__array_interface__["data"][0]
        for k, (lo, nbytes, stride, ref) in list(self._live.items()):
            off = addr - lo
            mm = ref()
            if mm is not None and 0 <= off and off + flat.nbytes <= nbytes:
                views = [np.frombuffer(mm, flat.dtype, flat.size, q * stride + off)
                         for q in range(self.t.size)]
                return (k, off, flat.nbytes), views
        return None

    def close(self):
        self._live.clear()


def _reduce_chunk(t, views, op, lo, hi):
    """Rank t.rank's chunk [lo, hi) of its copy := op over every rank's copy of it, in rank order."""
    r, n = t.rank, t.size
    if r < 2:  # my copy is operand 0 or 1: accumulate in place, element by element
        own = views[r][lo:hi]
        op(views[0][lo:hi], views[1][lo:hi], out=own)
        for q in range(2, n):
            op(own, views[q][lo:hi], out=own)
        return
    scratch = np.empty(min(hi - lo, max(1, SEGMENT // views[r].itemsize)), views[r].dtype)
    for s in range(lo, hi, scratch.size):
        e = min(s + scratch.size, hi)
        acc = scratch[:e - s]
        op(views[0][s:e], views[1][s:e], out=acc)
        for q in range(2, n):
            op(acc, views[q][s:e], out=acc)
        np.copyto(views[r][s:e], acc)


def _gather_chunks(t, views, b):
    r, n = t.rank, t.size
    for i in range(1, n):  # start at my right neighbour's chunk: ranks do not all read rank 0 first
        q = (r + i) % n
        np.copyto(views[r][b[q]:b[q + 1]], views[q][b[q]:b[q + 1]])


def allreduce(t, views, op):
    b = ring.chunk_bounds(views[0].size, t.size)
    t.sync(check=True)
    _reduce_chunk(t, views, op, b[t.rank], b[t.rank + 1])
    t.sync()
    _gather_chunks(t, views, b)
    t.sync()


def reduce_scatter(t, views, op):
    b = ring.chunk_bounds(views[0].size, t.size)
    t.sync(check=True)
    _reduce_chunk(t, views, op, b[t.rank], b[t.rank + 1])
    t.sync()


def allgather_chunks(t, views):
    b = ring.chunk_bounds(views[0].size, t.size)
    t.sync(check=True)
    _gather_chunks(t, views, b)
    t.sync()
