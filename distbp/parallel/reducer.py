"""The gradient reducer: buckets in a fixed order, each all-reduced as soon as its gradients are ready.

The idea is PyTorch DDP's Reducer. Parameters are packed, in reverse registration order (roughly the
order backward produces their gradients), into flat buckets of about `bucket_bytes`. A hook on every
parameter fires when backward has accumulated that parameter's last gradient contribution; it copies
the gradient into its bucket slot, and when a bucket is full the bucket's all-reduce is started
asynchronously while backward goes on with earlier layers. Buckets are started strictly in index
order, so every rank issues the same collectives in the same order. After backward, `finish()`
waits for all of them and points every `.grad` at its reduced slot.

The last bucket (the first layers' gradients, ready at the very end of backward) is reduced by
`finish()` on the caller's thread: nothing is left to overlap it with, and handing it to the
communication thread would only add two thread wake-ups (and, with one bucket, the thread itself).

Bucket and parameter buffers come from comm.empty (symmetric memory): on one node, buckets above
the communicator's small-message size are then read by the peers where they lie instead of being
copied through the transport (distbp/comm/symmetric.py).

The loss is normalised by the global batch, so the reduction is a plain sum (no division here).

With `shard=True` (for a ZeroRedundancyOptimizer) buckets are reduce-scattered instead: after
finish() each rank holds the full sum only in its shard of every bucket (comm.shard_bounds), and
the rest of each `.grad` holds this rank's own partial sum until gather_gradients() is called.
"""
import time
from contextlib import contextmanager

import numpy as np


class _Bucket:
    __slots__ = ("index", "params", "buffer", "ranges", "slots", "pending", "handle", "t_launch",
                 "t_ready")

    def __init__(self, index, params, dtype, alloc=np.zeros):
        self.index = index
        self.params = params
        offsets = np.concatenate([[0], np.cumsum([p.data.size for p in params])]).astype(int)
        self.buffer = alloc(int(offsets[-1]), dtype)  # zero-filled
        self.ranges = [slice(int(offsets[i]), int(offsets[i + 1])) for i in range(len(params))]
        # slots[i]: parameter i's gradient, a view of the buffer shaped like the parameter; made
        # once, since hooks and finish() use them at every step
        self.slots = [self.buffer[r].reshape(p.data.shape) for r, p in zip(self.ranges, params)]
        self.pending = len(params)
        self.handle = None
        self.t_launch = self.t_ready = 0.0

    @property
    def nbytes(self):
        return self.buffer.nbytes


def make_buckets(params, bucket_bytes, alloc=np.zeros):
    """Group parameters (already in reduction order) into buckets of one dtype, ~bucket_bytes each;
    alloc(count, dtype) makes each bucket's zero-filled buffer."""
    buckets, current, size, dtype = [], [], 0, None
    for p in params:
        if current and (p.data.dtype != dtype or size + p.data.nbytes > bucket_bytes):
            buckets.append(_Bucket(len(buckets), current, dtype, alloc))
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
        dtype = p.data.dtype
    if current:
        buckets.append(_Bucket(len(buckets), current, dtype, alloc))
    return buckets


class Reducer:
    def __init__(self, params, comm, bucket_mb=1.0, tracer=None, shard=False):
        self.comm = comm
        self.tracer = tracer
        self.shard = bool(shard) and comm.size > 1
        params = [p for p in params if p.requires_grad]
        self.params = params
        # Buffers in the communicator's symmetric memory: on one node the peers read them in place
        # (comm.empty; a collective, made in the same order on every rank).
        self.buckets = make_buckets(list(reversed(params)), max(1, int(bucket_mb * 2**20)), comm.empty)
        self._where = {}  # id(param) -> (bucket, index in bucket)
        for b in self.buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)] = (b, i)
        self._hooks = [p.register_post_accumulate_grad_hook(self._on_grad_ready) for p in params]
        self._param_buffers = None
        self.rounds = 0         # reductions completed (finish() calls that reduced something)
        self.sync = True
        self._next = 0          # next bucket index to launch
        self._active = False    # a reduction round is in progress (some grad arrived)
        self.t_backward_start = None
        self.stats = {"comm_seconds": 0.0, "exposed_seconds": 0.0, "buckets": len(self.buckets)}

    # -- hooks ------------------------------------------------------------------------------------
    def _on_grad_ready(self, p):
        if not self.sync or self.comm.size == 1 and not self.tracer:
            return
        if not self._active:
            self._active = True
            self.t_backward_start = time.perf_counter()
        b, i = self._where[id(p)]
        np.copyto(b.slots[i], p.grad)
        b.pending -= 1
        if b.pending == 0:
            b.t_ready = time.perf_counter()
            self._launch_ready()

    def _launch_ready(self):
        while self._next < len(self.buckets) - 1 and self.buckets[self._next].pending == 0:
            b = self.buckets[self._next]
            b.t_launch = time.perf_counter()
            b.handle = self._reduce(b.buffer, wait=False)
            self._next += 1

    # -- end of a round -----------------------------------------------------------------------------
    def finish(self):
        """Wait for every bucket and write the reduced gradients back. Idempotent; parameters that got
        no gradient this step (unused in forward) contribute zeros."""
        if not self.sync or self.comm.size == 1 and not self.tracer:
            return
        if not self._active and self._next == 0:
            return
        for b in self.buckets:
            if b.pending:
                for p, slot in zip(b.params, b.slots):
                    if p.grad is None:
                        slot[...] = 0
                        p.grad = slot
                b.pending = 0
        self._launch_ready()
        t_end_backward = time.perf_counter()
        last = self.buckets[-1]
        last.t_launch = t_end_backward
        self._reduce(last.buffer, wait=True)  # queued behind the async ones: the order stays fixed
        self._next = len(self.buckets)
        for b in self.buckets:
            t_done = None
            if b.handle is not None:
                b.handle.wait()
                t_done = getattr(b.handle, "finished_at", None)   # when the comm thread finished
                b.handle = None
            t_done = t_done or time.perf_counter()
            if self.tracer:
                what = "reduce-scatter" if self.shard else "allreduce"
                self.tracer.complete(f"{what} bucket {b.index} ({b.nbytes / 2**20:.2f} MB)",
                                     b.t_launch, t_done, cat="comm", args={"bucket": b.index})
            for p, slot in zip(b.params, b.slots):
                p.grad = slot
        t_all_done = time.perf_counter()
        self.stats["exposed_seconds"] += t_all_done - t_end_backward
        self.stats["comm_seconds"] += t_all_done - min(b.t_launch for b in self.buckets)
        for b in self.buckets:
            b.pending = len(b.params)
        self._next = 0
        self._active = False
        self.rounds += 1

    def _reduce(self, buffer, wait):
        if self.shard:
            return (self.comm.reduce_scatter if wait else self.comm.reduce_scatter_async)(buffer)
        return (self.comm.allreduce if wait else self.comm.allreduce_async)(buffer)

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
        """shard=True: all-gather the reduced shards so every `.grad` holds the full sum (e.g. for
        per-layer gradient statistics). Without sharding the gradients are already whole."""
        if self.shard:
            for b in self.buckets:
                self.comm.allgather_into(b.buffer)

    @contextmanager
    def no_sync(self):
        """Gradients accumulate locally (no communication) inside this context, as in DDP."""
        old, self.sync = self.sync, False
        try:
            yield
        finally:
            self.sync = old

    def remove_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []
