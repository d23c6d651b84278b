"""The Communicator interface every backend implements, its async handle, and CommError.

A communicator moves numpy arrays only. Collectives run in the order they are issued, on every
rank in the same order (as in MPI / torch.distributed). Async collectives run on one communication
thread per communicator, in FIFO order, so `allreduce_async` overlaps with the caller's compute
(numpy releases the GIL for copies and adds). A synchronous call issued while async work is queued
waits behind it; with nothing queued it runs inline on the caller's thread (no hand-off latency).

Subclasses provide `transport` (transport.py: sendrecv/send/recv to ring neighbours, begin/end of
each call) or override the `_allreduce` / `_broadcast` / `_allgather` methods.

Every collective is a flight.Call, numbered in issue order and kept in the flight recorder
(`comm.flight`); `tag=` (or flight.tag(...) around the call) says which caller issued it, e.g.
"bucket 3 of 5". A CommError writes the record (flight.py) and names where in its message.
"""
import json
import os
import queue
import threading

import numpy as np

from distbp.comm import flight, heartbeat, ring, symmetric
from distbp.comm.flight import DTYPES, OPCODES, REDUCE_CODES, Call

# op name -> numpy ufunc applied as ufunc(acc, incoming, out=acc). "mean" is sum then divide.
OPS = {"sum": np.add, "max": np.maximum, "min": np.minimum}


class CommError(RuntimeError):
    """A collective failed: a peer died, stopped answering, or called a different collective.

    `rank` is the peer held responsible (None when unknown), `op` the collective's name."""

    def __init__(self, message, rank=None, op=None):
        super().__init__(message)
        self.rank, self.op = rank, op


class Work:
    """Handle of an async collective (torch.distributed calls it Work). `wait()` returns the array."""

    def __init__(self):
        self._done = threading.Event()
        self._result = self._error = None

    def _finish(self, result=None, error=None):
        self._result, self._error = result, error
        self._done.set()

    def is_completed(self):
        return self._done.is_set()

    def wait(self, timeout=None):
        if not self._done.wait(timeout):
            raise TimeoutError(f"async collective not finished after {timeout}s")
        if self._error is not None:
            raise self._error
        return self._result


def _check_array(array, what, writeable=True):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{what} needs a numpy array, got {type(array).__name__}")
    if not array.flags.c_contiguous or (writeable and not array.flags.writeable):
        raise ValueError(f"{what} needs a C-contiguous writeable array (use np.ascontiguousarray); "
                         f"got shape {array.shape} strides {array.strides}")
    return array.reshape(-1)


class Communicator:
    """rank, size, and the collectives. Backends: single.py, local.py (shared memory), mpi.py."""

    backend = "base"

    def __init__(self, rank, size, timeout=30.0, debug=None):
        self.rank, self.size, self.timeout = rank, size, float(timeout)
        if debug is None:
            debug = os.environ.get("DISTBP_COMM_DEBUG", "") not in ("", "0")
        self.debug = bool(debug)
        self.transport = None
        self._seq = 0  # collectives issued: the sequence numbers of the calls
        self.flight = flight.FlightRecorder(rank, size, self.backend)
        self.heartbeat = None
        self._tag = ""  # the tag of the collective being executed (captured when it was issued)
        self._current = None  # its Call, once it has begun
        self._queue = None
        self._thread = None
        self._pending = 0
        self._plock = threading.Lock()  # guards _pending (+= is not atomic across threads)
        self._lock = threading.Lock()  # held while a collective executes
        self._broken = None  # the CommError that broke this communicator
        self._closed = False

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- public collectives ----
    def allreduce(self, array, op="sum", *, tag=None):
        """Reduce `array` in place across ranks (op: sum, max, min, mean) and return it.
        tag: the caller, for the flight record and error messages (every collective takes one)."""
        return self._call(self._allreduce_checked, self._reduce_args(array, op), tag=tag)

    def allreduce_async(self, array, op="sum", *, tag=None):
        """Like allreduce, returns a Work handle; `handle.wait()` returns the reduced array."""
        return self._call(self._allreduce_checked, self._reduce_args(array, op), sync=False, tag=tag)

    def reduce_scatter(self, array, op="sum", *, tag=None):
        """Reduce `array` in place so that this rank's shard of it, array.flat[lo:hi] with
        (lo, hi) = shard_bounds(array.size), holds the reduction over all ranks (op: sum, max, min,
        mean); the rest of `array` is left with partial results. Returns the shard (a 1-D view)."""
        return self._call(self._reduce_scatter_checked, self._reduce_args(array, op, "reduce_scatter"),
                          tag=tag)

    def reduce_scatter_async(self, array, op="sum", *, tag=None):
        """Like reduce_scatter, returns a Work handle; `handle.wait()` returns the shard."""
        return self._call(self._reduce_scatter_checked, self._reduce_args(array, op, "reduce_scatter"),
                          sync=False, tag=tag)

    def allgather_into(self, array, *, tag=None):
        """In place: every rank's shard of `array` (shard_bounds) is copied to every other rank, so
        all ranks end with the same bits. Returns `array`."""
        flat = _check_array(array, "allgather_into")
        return self._call(self._allgather_into_checked, (array, flat), tag=tag)

    def allgather_into_async(self, array, *, tag=None):
        flat = _check_array(array, "allgather_into")
        return self._call(self._allgather_into_checked, (array, flat), sync=False, tag=tag)

    def shard_bounds(self, n, rank=None):
        """(lo, hi): the element range of an n-element buffer that `rank` (default: this rank) owns
        in reduce_scatter and allgather_into. Nearly equal, in rank order; may be empty."""
        b = ring.chunk_bounds(n, self.size)
        r = self.rank if rank is None else rank
        return b[r], b[r + 1]

    def broadcast(self, array, root=0, *, tag=None):
        """Copy rank `root`'s array into `array` on every rank, in place; returns it."""
        flat = _check_array(array, "broadcast")
        self._check_root(root, "broadcast")
        return self._call(self._broadcast_checked, (array, flat, root), tag=tag)

    def allgather(self, array, *, tag=None):
        """Returns an array of shape (size, *array.shape): row i is rank i's array."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"allgather needs a numpy array, got {type(array).__name__}")
        flat = _check_array(np.ascontiguousarray(array), "allgather", writeable=False)
        return self._call(self._allgather_checked, (array, flat), tag=tag)

    def barrier(self, *, tag=None):
        self._call(self._barrier_checked, (), tag=tag)

    def empty(self, shape, dtype=np.float32):
        """A new zero-filled array in symmetric memory (torch's symm_mem.empty). Collective: every
        rank calls it in the same order with the same shape and dtype. On one node (local, and mpi
        over shared memory) every rank can read every rank's copy, so all-reduces, reduce-scatters
        and all-gathers of it above small_bytes (of the array, or of the same view of it on every
        rank) read the peers' copies directly: one pass over memory per byte where a private array
        takes two (symmetric.py). Elsewhere it is a plain numpy array. Freed with its last view."""
        shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
        if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
            raise ValueError(f"comm.empty needs a shape of non-negative integers, got {shape}")
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise ValueError(f"comm.empty needs a numeric dtype, got {dtype}")
        heap = getattr(self.transport, "heap", None)
        if heap is None or self.size == 1:
            return np.zeros(shape, dtype)
        return self._call(self._empty_checked, (heap, shape, dtype))

    def broadcast_object(self, obj, root=0):
        """Rank `root`'s JSON-able object on every rank (encoded as JSON bytes, never pickled)."""
        self._check_root(root, "broadcast_object")
        data = _encode(obj) if self.rank == root else b""
        n = self.broadcast(np.array([len(data)], np.int64), root)[0]
        buf = np.frombuffer(data, np.uint8).copy() if self.rank == root else np.empty(n, np.uint8)
        return json.loads(self.broadcast(buf, root).tobytes())

    def allgather_object(self, obj):
        """List of every rank's JSON-able object, in rank order."""
        data = _encode(obj)
        lengths = self.allgather(np.array([len(data)], np.int64))[:, 0]
        buf = np.zeros(int(lengths.max()), np.uint8)
        buf[:len(data)] = np.frombuffer(data, np.uint8)
        rows = self.allgather(buf)
        return [json.loads(rows[i, :lengths[i]].tobytes()) for i in range(self.size)]

    def gather_object(self, obj, root=0):
        """List of every rank's object on `root`, None elsewhere."""
        self._check_root(root, "gather_object")
        objs = self.allgather_object(obj)
        return objs if self.rank == root else None

    def abort(self, code=1):
        """End this process at once, without the goodbyes a dead peer would never answer. Under MPI
        this is MPI_Abort, which also brings down every other rank."""
        os._exit(code)

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(self.timeout + 5)
        if self.heartbeat is not None:
            self.heartbeat.close()
        self._close_transport()

    def _start_heartbeat(self):
        """Backends whose transport beats (transport.py) call this once the transport is up."""
        seconds = heartbeat.heartbeat_timeout()
        if self.size > 1 and seconds > 0 and hasattr(self.transport, "beat"):
            self.heartbeat = heartbeat.Heartbeat(self.transport, self.rank, self.size, seconds)
            self.transport.heartbeat = self.heartbeat
        flight.install_signal_handlers()

    # ---- execution: inline or on the communication thread, FIFO ----
    def _call(self, fn, args, sync=True, tag=None):
        """sync: run fn(*args) and return its result; else return a Work handle. The tag is taken
        now (the caller's flight.tag), not when the communication thread gets to the call."""
        if self._closed:
            raise CommError(f"{self!r} is closed", op=getattr(fn, "__name__", None))
        tag = tag or flight.current_tag()
        if sync and self._pending == 0:
            # Inline, without a Work handle (its Event costs microseconds: a small all-reduce's time).
            with self._lock:
                if self._broken is not None:
                    raise self._broken
                try:
                    return self._run(fn, args, tag)
                except CommError as e:
                    self._fail(e)
                    raise
        work = Work()
        if self._thread is None:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._loop, name=f"distbp-comm-{self.rank}",
                                            daemon=True)
            self._thread.start()
        with self._plock:
            self._pending += 1
        self._queue.put((fn, args, tag, work))
        return work.wait() if sync else work

    def _loop(self):
        while (item := self._queue.get()) is not None:
            fn, args, tag, work = item
            self._execute(fn, args, tag, work)
            with self._plock:
                self._pending -= 1

    def _execute(self, fn, args, tag, work):
        with self._lock:
            if self._broken is not None:
                return work._finish(error=self._broken)
            try:
                work._finish(self._run(fn, args, tag))
            except CommError as e:
                self._fail(e)
                work._finish(error=e)
            except BaseException as e:  # handed to whoever waits
                work._finish(error=e)

    def _run(self, fn, args, tag):
        """One collective: fn begins it (_header), and it ends here unless it raised."""
        self._tag, self._current = tag, None
        result = fn(*args)
        call = self._current
        if call is not None:
            self.flight.end(call)
            if self.transport is not None:
                self.transport.end(call)
        return result

    def _fail(self, error):
        """The communicator is broken from here on: write the flight record and say where."""
        self._broken = error
        tell = getattr(self.transport, "fail", None)
        if tell is not None:
            tell(str(error))
        path = self.flight.dump(str(error))
        if path is not None and error.args and "flight record" not in str(error):
            error.args = (f"{error.args[0]} (flight records: {os.path.dirname(path)})",) + error.args[1:]

    # ---- checked bodies (run on the executing thread) ----
    def _reduce_args(self, array, op, what="allreduce"):
        flat = _check_array(array, what)
        if op not in OPS and op != "mean":
            raise ValueError(f"{what} op must be one of sum, max, min, mean; got {op!r}")
        if op == "mean" and not np.issubdtype(array.dtype, np.inexact):
            raise ValueError(f"{what} op='mean' needs a floating dtype, got {array.dtype}")
        return array, flat, op

    def _allreduce_checked(self, array, flat, op):
        self._header("allreduce", flat, REDUCE_CODES.index(op))
        self._allreduce(flat, "sum" if op == "mean" else op)
        if op == "mean" and self.size > 1:
            np.divide(flat, self.size, out=flat)
        return array

    def _reduce_scatter_checked(self, array, flat, op):
        self._header("reduce_scatter", flat, REDUCE_CODES.index(op))
        self._reduce_scatter(flat, "sum" if op == "mean" else op)
        lo, hi = self.shard_bounds(flat.size)
        shard = flat[lo:hi]
        if op == "mean" and self.size > 1:
            np.divide(shard, self.size, out=shard)
        return shard

    def _allgather_into_checked(self, array, flat):
        self._header("allgather_into", flat, 0)
        self._allgather_into(flat)
        return array

    def _broadcast_checked(self, array, flat, root):
        self._header("broadcast", flat, root)
        self._broadcast(flat, root)
        return array

    def _allgather_checked(self, array, flat):
        self._header("allgather", flat, 0)
        out = np.empty((self.size, flat.size), flat.dtype)
        self._allgather(flat, out)
        return out.reshape((self.size,) + np.shape(array))

    def _empty_checked(self, heap, shape, dtype):
        self._header("empty", np.empty(0, dtype), 0)
        return heap.empty(shape, dtype)

    def _barrier_checked(self):
        self._header("barrier", np.empty(0, np.uint8), 0)
        self._allgather(np.zeros(1, np.uint8), np.empty((self.size, 1), np.uint8))

    def _check_root(self, root, what):
        if not 0 <= root < self.size:
            raise ValueError(f"{what} root={root} is not a rank of a world of size {self.size}")

    def _header(self, op, flat, extra):
        """The collective begins: record and publish its Call (the transport compares it with the
        peers'). Debug mode also gathers every rank's (op, dtype, count, seq, extra) and compares."""
        self._seq += 1
        call = self._current = Call(self._seq, op, flat.dtype.name, flat.size, extra, self._tag)
        self.flight.begin(call)
        if self.transport is not None:
            self.transport.begin(call, flat)
        if not self.debug or self.size == 1:
            return
        dt = DTYPES.index(flat.dtype.name) if flat.dtype.name in DTYPES else -1
        mine = np.array([OPCODES.index(op), dt, flat.size, self._seq, extra], np.int64)
        rows = np.empty((self.size, mine.size), np.int64)
        self._allgather(mine, rows)
        for r in range(1, self.size):
            if not np.array_equal(rows[r], rows[0]):
                raise CommError(f"mismatched collectives: rank 0 called {_describe(rows[0])} but "
                                f"rank {r} called {_describe(rows[r])} (seen on rank {self.rank})",
                                rank=r, op=op)

    # ---- backend hooks: the ring over self.transport by default ----
    # An array in symmetric memory (begin() found it: transport.direct holds every rank's view) is
    # read where it lies; any other array goes around the ring.
    def _allreduce(self, flat, op):
        views = getattr(self.transport, "direct", None)
        if views is not None:
            return symmetric.allreduce(self.transport, views, OPS[op])
        ring.allreduce(self.transport, flat, OPS[op])

    def _reduce_scatter(self, flat, op):
        if self.transport is None:      # a backend without a ring: reduce all, keep my shard
            return self._allreduce(flat, op)
        views = getattr(self.transport, "direct", None)
        if views is not None:
            return symmetric.reduce_scatter(self.transport, views, OPS[op])
        ring.reduce_scatter(self.transport, flat, OPS[op])

    def _allgather_into(self, flat):
        views = getattr(self.transport, "direct", None)
        if views is not None:
            return symmetric.allgather_chunks(self.transport, views)
        if self.transport is None:      # through _allgather, every shard padded to the longest
            b = ring.chunk_bounds(flat.size, self.size)
            longest = max(b[q + 1] - b[q] for q in range(self.size))
            mine = np.zeros(longest, flat.dtype)
            mine[:b[self.rank + 1] - b[self.rank]] = flat[b[self.rank]:b[self.rank + 1]]
            rows = np.empty((self.size, longest), flat.dtype)
            self._allgather(mine, rows)
            for q in range(self.size):
                flat[b[q]:b[q + 1]] = rows[q, :b[q + 1] - b[q]]
            return
        ring.allgather_chunks(self.transport, flat)

    def _broadcast(self, flat, root):
        ring.broadcast(self.transport, flat, root)

    def _allgather(self, flat, out):
        ring.allgather(self.transport, flat, out)

    def _close_transport(self):
        if self.transport is not None:
            self.transport.close()


def _describe(row):
    op, dt, count, seq, extra = (int(x) for x in row)
    return Call.from_codes(seq, op, dt, count, extra).describe()


def _encode(obj):
    try:
        return json.dumps(obj, separators=(",", ":")).encode()
    except TypeError as e:
        raise TypeError(f"object collectives carry JSON-able dicts/lists/str/numbers only: {e}") from None
