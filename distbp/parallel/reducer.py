"""The gradient reducer: buckets in a fixed order, each reduced as soon as its gradients are ready.

The idea is PyTorch DDP's Reducer. Parameters are packed, in reverse registration order (roughly the
order backward produces their gradients), into flat buckets of about `bucket_bytes`. A hook on every
parameter fires when backward has accumulated that parameter's last gradient contribution; it copies
the gradient, times `weight`, into its bucket slot, and when a bucket is full its communication
hook (default: an all-reduce; a reduce-scatter in shard mode) is started while backward goes on
with earlier layers. Buckets start strictly in index order, so every rank issues the same
collectives in the same order. The first hook of a backward queues `_finish` in the autograd engine
(distbp.autograd.queue_callback): it runs as the last thing backward does, waits for every bucket
and points every `.grad` at its reduced slot, so backward() returns with gradients reduced.

A round is one synced backward. Its first hook also all-reduces, ahead of the buckets, a small
control vector (see `control`) saying which parameters hold a gradient on each rank: a parameter
that backward did not reach (and that holds no gradient from an earlier backward) contributes
zeros, so no bucket waits for it, and one that no rank used keeps `.grad = None` (an optimizer then
leaves it alone, as on one process).

The last bucket (the first layers' gradients, ready at the very end of backward) is reduced by
the default hook on the caller's thread: nothing is left to overlap it with.

Bucket buffers come from comm.empty (symmetric memory): on one node, buckets above the
communicator's small-message size are read by the peers where they lie (distbp/comm/symmetric.py).

Shard mode (set by a ZeroRedundancyOptimizer over these parameters): after a round each rank holds
the full sum only in its shard of every bucket (comm.shard_bounds); the rest of each `.grad` holds
this rank's own contribution until gather_gradients() is called.
"""
import time
import weakref

import numpy as np

from distbp import autograd
from distbp.comm.base import CommError
from distbp.parallel import flat
from distbp.parallel.comm_hooks import GradBucket, allreduce_hook, reduce_scatter_hook

# control vector: [samples, active ranks, kind, used flag per parameter], summed over ranks
FORWARD, ROUND = 1.0, 2.0


def wait_control(work):
    """Wait for a control all-reduce; a peer that never joins it has most likely run out of
    batches: say so, with the rank the communicator blames."""
    try:
        return work.wait()
    except CommError as e:
        who = f"rank {e.rank}" if e.rank is not None else "a rank"
        raise CommError(f"{e} -- DistributedDataParallel: if {who} ran out of batches before the "
                        "others, run the loop inside `with ddp.join():` (or give every rank the "
                        "same number of batches)", rank=e.rank, op=e.op) from e


class _Bucket:
    __slots__ = ("index", "params", "buffer", "ranges", "slots", "pending", "future", "t_launch")

    def __init__(self, index, params, dtype, alloc=np.zeros):
        self.index = index
        self.params = params
        offsets = np.concatenate([[0], np.cumsum([p.data.size for p in params])]).astype(int)
        self.buffer = alloc(int(offsets[-1]), dtype)  # zero-filled
        self.ranges = [slice(int(offsets[i]), int(offsets[i + 1])) for i in range(len(params))]
        # slots[i]: parameter i's gradient, a view of the buffer shaped like the parameter
        self.slots = [self.buffer[r].reshape(p.data.shape) for r, p in zip(self.ranges, params)]
        self.pending = len(params)
        self.future = None
        self.t_launch = 0.0

    @property
    def nbytes(self):
        return self.buffer.nbytes


def make_buckets(params, bucket_bytes, alloc=np.zeros):
    """Group parameters (already in reduction order) into buckets of one dtype, ~bucket_bytes each;
    alloc(count, dtype) makes each bucket's zero-filled buffer."""
    return [_Bucket(i, run, run[0].data.dtype, alloc)
            for i, run in enumerate(flat.group(params, bucket_bytes))]


class Reducer:
    """`prepare(task) -> (sync, weight)` (from the DDP) decides, at the first hook of a backward,
    whether this backward reduces and by what every gradient is multiplied first."""

    def __init__(self, params, comm, bucket_mb=1.0, tracer=None, prepare=None):
        self.comm = comm
        self.tracer = tracer
        self.prepare = prepare or (lambda task: (True, 1.0))
        self.on_control = lambda total: None    # sees every round's summed control vector
        self.shard = False
        params = [p for p in params if p.requires_grad]
        self.params = params
        # Buffers in the communicator's symmetric memory (comm.empty: a collective, made in the same
        # order on every rank).
        self.buckets = make_buckets(list(reversed(params)), max(1, int(bucket_mb * 2**20)), comm.empty)
        self._where = {}  # id(param) -> (bucket, index in bucket)
        for b in self.buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)] = (b, i)
        self._position = {id(p): k for k, p in enumerate(params)}
        self._hooks = [p.register_post_accumulate_grad_hook(self._on_grad_ready) for p in params]
        self.comm_hook, self.hook_state = None, None
        self._param_buffers = None
        self.rounds = 0         # rounds completed
        self.unreduced = False  # some .grad holds a local gradient no round has reduced yet
        self._task = lambda: None   # weakref to the GraphTask whose first hook we have seen
        self._open = False      # a round is in progress (its _finish is queued)
        self._local = False     # ... on one process with nothing to do (see _trivial)
        self._broken = False
        self._weight = 1.0
        self._control = None
        self._next = 0          # next bucket index to launch
        self.t_backward_start = None
        self.stats = {"comm_seconds": 0.0, "exposed_seconds": 0.0, "buckets": len(self.buckets)}

    # -- configuration ------------------------------------------------------------------------------
    def register_comm_hook(self, state, hook):
        if self.comm_hook is not None:
            raise RuntimeError("register_comm_hook: a communication hook is already registered; "
                               "it can be registered only once")
        if self.rounds or self._open:
            raise RuntimeError("register_comm_hook must be called before the first backward()")
        self.comm_hook, self.hook_state = hook, state

    def enable_sharding(self):
        """Reduce-scatter from now on (a ZeroRedundancyOptimizer owns these parameters)."""
        if self._open:
            raise RuntimeError("cannot switch the reducer to shard mode during backward()")
        self.shard = self.comm.size > 1

    def _trivial(self):
        """One process, the default hook, no tracing: the local gradient is already the result."""
        return self.comm.size == 1 and self.comm_hook is None and self.tracer is None

    def control(self, samples=0.0, kind=0.0, used=None, active=1.0):
        v = np.zeros(3 + len(self.params), np.float64)
        v[0], v[1], v[2] = samples, active, kind
        if used is not None:
            v[3:] = used
        return v

    # -- hooks --------------------------------------------------------------------------------------
    def _on_grad_ready(self, p):
        task = autograd.current_graph_task()
        if task is not self._task():
            self._task = weakref.ref(task)     # weak: the task holds the whole graph's nodes
            self._begin(task)
        if not self._open or self._local:
            return
        b, i = self._where[id(p)]
        self._contribute(b, i, p)
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()

    def _begin(self, task):
        """First hook of a backward: decide whether it reduces; if so open the round."""
        if self._open or self._broken:
            self._broken = True
            self.unreduced = True
            raise RuntimeError("an earlier backward() raised while it was reducing gradients; the "
                               "ranks' gradients and collectives no longer match: restart the "
                               "processes (from a checkpoint)")
        sync, self._weight = self.prepare(task)
        if not sync:
            self.unreduced = True
            return
        self._open = True
        self.unreduced = True           # until _finish: a step now would use local gradients
        self._local = self._trivial()
        autograd.queue_callback(self._finish)
        if self._local:
            return
        self.t_backward_start = time.perf_counter()
        used = [task.reaches_leaf(p) or p.grad is not None for p in self.params]
        control = self.control(kind=ROUND, used=used)
        self._control = self.comm.allreduce_async(control) if self.comm.size > 1 else None
        if self._control is None:
            self._used = np.asarray(used, bool)
        for b in self.buckets:      # what backward will not reach: its gradient (or zeros) now
            for i, q in enumerate(b.params):
                if not task.reaches_leaf(q):
                    self._contribute(b, i, q)
                    b.pending -= 1
        self._launch_ready()

    def _contribute(self, b, i, p):
        slot, g = b.slots[i], p.grad
        if g is None:
            slot.fill(0)
        elif self._weight == 1.0:
            if g is not slot:
                np.copyto(slot, g)
        else:
            np.multiply(g, self._weight, out=slot)

    def _launch_ready(self, last=False):
        """Start every full bucket in index order; the last one only from _finish (`last`), so its
        time counts as exposed communication."""
        stop = len(self.buckets) if last else len(self.buckets) - 1
        while self._next < stop and self.buckets[self._next].pending == 0:
            b = self.buckets[self._next]
            b.t_launch = time.perf_counter()
            b.future = self._run_hook(b)
            self._next += 1

    def _run_hook(self, b):
        bucket = GradBucket(b, b.index == len(self.buckets) - 1)
        if self.comm_hook is None:
            return (reduce_scatter_hook if self.shard else allreduce_hook)(self.comm, bucket)
        return self.comm_hook(self.hook_state, bucket)

    # -- end of a round (queued in the autograd engine) -----------------------------------------------
    def _finish(self):
        if self._local:
            self._close_round()
            return
        t_end_backward = time.perf_counter()
        stuck = [b.index for b in self.buckets if b.pending]
        if stuck:
            raise RuntimeError(f"reducer: bucket(s) {stuck} still wait for gradients at the end of "
                               "backward (a hook was removed?)")
        self._launch_ready(last=True)
        if self._control is not None:
            total = wait_control(self._control)
            self.on_control(total)
            self._used = total[3:] > 0
            self._control = None
        for b in self.buckets:
            result = b.future.wait()
            b.future = None
            if result is not b.buffer:
                self._take(b, np.asarray(result).reshape(-1))
            t_done = time.perf_counter()
            if self.tracer:
                what = "reduce-scatter" if self.shard else "allreduce"
                self.tracer.complete(f"{what} bucket {b.index} ({b.nbytes / 2**20:.2f} MB)",
                                     b.t_launch, t_done, cat="comm", args={"bucket": b.index})
            for p, slot in zip(b.params, b.slots):
                p.grad = slot if self._used[self._position[id(p)]] else None
        t_all_done = time.perf_counter()
        self.stats["exposed_seconds"] += t_all_done - t_end_backward
        self.stats["comm_seconds"] += t_all_done - min(b.t_launch for b in self.buckets)
        for b in self.buckets:
            b.pending = len(b.params)
        self._next = 0
        self._close_round()

    def _take(self, b, result):
        """A hook returned a new array: copy it in (in shard mode only this rank's shard counts)."""
        if result.size != b.buffer.size:
            raise ValueError(f"comm hook returned {result.size} elements for bucket {b.index} of "
                             f"{b.buffer.size}")
        lo, hi = self.comm.shard_bounds(b.buffer.size) if self.shard else (0, b.buffer.size)
        b.buffer[lo:hi] = result[lo:hi]

    def _close_round(self):
        self._open = False
        self.unreduced = False
        self.rounds += 1

    # -- a joined rank (DistributedDataParallel.join) ---------------------------------------------------
    def shadow(self, kind):
        """Match the collectives of a round the active ranks run, contributing zeros."""
        if kind != ROUND:
            return
        for b in self.buckets:
            b.buffer.fill(0)
            self._run_hook(b).wait()
        for p in self.params:
            p.grad = None

    # -- parameters laid out like the buckets ------------------------------------------------------------
    def parameter_buffers(self):
        """One flat buffer per bucket holding that bucket's parameters in the gradient layout; every
        such p.data becomes a view of it (done once). A sharded optimizer updates its shard of each
        and all-gathers the shards straight into the parameters."""
        if self._param_buffers is None:
            self._param_buffers = []
            for b in self.buckets:
                flat = self.comm.empty(b.buffer.shape, b.buffer.dtype)
                for p, r in zip(b.params, b.ranges):
                    view = flat[r].reshape(p.data.shape)
                    view[...] = p.data
                    p.data = view
                self._param_buffers.append(flat)
        return self._param_buffers

    def gather_gradients(self):
        """Shard mode: all-gather the reduced shards so every `.grad` holds the full sum (e.g. for
        per-layer gradient statistics). Without sharding the gradients are already whole."""
        if self.shard:
            for b in self.buckets:
                self.comm.allgather_into(b.buffer)

    def remove_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []
