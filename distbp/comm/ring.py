"""The ring collectives, written once against a transport and run by the MPI and local backends.

A transport links each rank to its ring neighbours, left = rank-1 and right = rank+1 (mod size):

    transport.sendrecv(send, recv, op=None)  # send -> right while recv <- left; if op, recv = op(recv, incoming)
    transport.send(arr)                      # -> right
    transport.recv(arr, op=None)             # <- left
    transport.exchange(peer, send, like, tag)  # send -> peer (None: nothing) and return what peer
                                             # sent me with this tag, shaped like `like` (None: nothing)
    transport.rank, transport.size, transport.op (the collective's name, for error messages)
    transport.small_bytes                    # all-reduces up to this size take allreduce_small

Transports split large messages into segments and stream them (the shared-memory transport through
a ring buffer of slots, MPI with one Isend/Irecv per segment), so a receiver reduces segment k while
segment k+1 is in flight. A sendrecv posts both directions before waiting, so the ring cannot deadlock.

allreduce is reduce-scatter then all-gather: each rank sends and receives 2(N-1)/N of the buffer.
Rank r owns chunk r (chunk_bounds): the reduce-scatter leaves its full reduction there, and the
all-gather copies each owner's bits to every rank, so every rank ends with identical bits. The two
halves are also collectives of their own (a sharded optimizer reduce-scatters gradients, updates
its chunk and all-gathers the parameters).
A transport with `block_bytes` gets the buffer in blocks of size * block_bytes, each run through
the whole ring while it is hot in cache (NCCL-style slices); a reduced block is sent on at once, and
the buffered transport lets a rank run several blocks ahead of its neighbour, so blocks stream.

Small buffers (<= transport.small_bytes, 64 KB by default) take recursive doubling instead
(allreduce_small), as MPI libraries and NCCL pick algorithms by size: the ring's 2(N-1) steps each
cost a hand-off and some microseconds of Python, which dominate a small message, while recursive
doubling needs ceil(log2 N) exchanges (+2 for a world that is not a power of two), each moving the
whole buffer. The switch depends only on the byte count, so every rank of a consistent call takes
the same path.
"""
import numpy as np


def chunk_bounds(n, size):
    """Element offsets of `size` nearly equal chunks of n elements (some may be empty)."""
    return [i * n // size for i in range(size + 1)]


def allreduce(t, flat, op):
    """Reduce the 1-D contiguous `flat` in place across the ring with ufunc `op` (np.add, ...)."""
    if t.size == 1:
        return flat
    if flat.nbytes <= getattr(t, "small_bytes", 0):
        return allreduce_small(t, flat, op)
    block_bytes = getattr(t, "block_bytes", None)
    if not block_bytes or flat.nbytes <= t.size * block_bytes:
        return _allreduce_block(t, flat, op)
    step = t.size * max(1, block_bytes // flat.itemsize)
    for i in range(0, flat.size, step):
        _allreduce_block(t, flat[i:i + step], op)
    return flat


def _allreduce_block(t, flat, op):
    reduce_scatter(t, flat, op)
    allgather_chunks(t, flat)
    return flat


def reduce_scatter(t, flat, op):
    """Reduce-scatter around the ring: afterwards rank r's chunk r (chunk_bounds) of `flat` holds the
    full reduction; the other chunks hold partial sums. At step s rank r passes on chunk r-s-1 and
    folds chunk r-s-2 into its own copy, so after N-1 steps it has folded every rank into chunk r."""
    n, r = t.size, t.rank
    if n == 1:
        return flat
    b = chunk_bounds(flat.size, n)
    chunk = lambda c: flat[b[c % n]:b[c % n + 1]]
    for s in range(n - 1):
        t.sendrecv(chunk(r - s - 1), chunk(r - s - 2), op)
    return flat


def allgather_chunks(t, flat):
    """All-gather in place: rank q's chunk q of `flat` is copied to every rank, so every rank ends
    with the owners' very bits. At step s rank r passes on chunk r-s and receives chunk r-s-1."""
    n, r = t.size, t.rank
    if n == 1:
        return flat
    b = chunk_bounds(flat.size, n)
    chunk = lambda c: flat[b[c % n]:b[c % n + 1]]
    for s in range(n - 1):
        t.sendrecv(chunk(r - s), chunk(r - s - 1))
    return flat


def allreduce_small(t, flat, op):
    """Recursive doubling: at step k rank r swaps its partial result with rank r ^ 2**k and both
    compute op(lower rank's partial, higher rank's partial), so the two hold the same bits (the
    operands are in the same order on both, which also keeps max/min of -0.0 and 0.0 identical).
    A world of size N = P + E (P the largest power of two <= N) first folds rank P + e into rank e
    (tag L = log2 P), runs the doubling among ranks 0..P-1, then copies the result back to rank P + e."""
    n, r = t.size, t.rank
    fold = n.bit_length() - 1  # tags 0..fold-1: doubling steps; fold: the extra ranks
    p = 1 << fold
    if r >= p:  # an extra rank: hand my data to r - p, get the result back
        t.exchange(r - p, flat, None, fold)
        np.copyto(flat, t.exchange(r - p, None, flat, fold))
        return flat
    if r < n - p:
        op(flat, t.exchange(r + p, None, flat, fold), out=flat)
    for k in range(fold):
        peer = r ^ (1 << k)
        theirs = t.exchange(peer, flat, flat, k)
        if r < peer:
            op(flat, theirs, out=flat)
        else:
            op(theirs, flat, out=flat)
    if r < n - p:
        t.exchange(r + p, flat, None, fold)
    return flat


def allgather(t, flat, out):
    """out[i] = rank i's `flat` for every i; out is (size, flat.size) and contiguous."""
    n, r = t.size, t.rank
    out[r] = flat
    for s in range(n - 1):
        t.sendrecv(out[(r - s) % n], out[(r - s - 1) % n])
    return out


def broadcast(t, flat, root, segment_bytes=1 << 20):
    """Pipelined ring broadcast from `root`: every rank receives a segment from the left and passes
    it right (unless the right is root), so the last rank starts receiving before the root finishes."""
    n, r = t.size, t.rank
    if n == 1:
        return flat
    step = max(1, segment_bytes // max(1, flat.itemsize))
    starts = range(0, flat.size, step) if flat.size else [0]
    for i in starts:
        seg = flat[i:i + step]
        if r != root:
            t.recv(seg)
        if (r + 1) % n != root:
            t.send(seg)
    return flat
