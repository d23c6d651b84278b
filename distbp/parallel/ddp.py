"""DistributedDataParallel: a thin wrapper, as in PyTorch. The work is in the Reducer.

    model = DistributedDataParallel(model, comm, bucket_mb=1.0)
    loss = criterion(model(x), y)      # loss normalised by the *global* batch
    loss.backward()                    # buckets are all-reduced while backward runs
    model.finish_gradient_sync()       # waits for the last buckets (a no-op if already done)
    optimizer.step()

With shard_optimizer=True the buckets are reduce-scattered for a ZeroRedundancyOptimizer (zero.py),
which updates one shard of the parameters per rank and all-gathers them; use it only with one (a
plain optimizer would see each rank's partial sums outside its shard).

At construction every rank checks that all ranks built the same model (names, shapes, dtypes), and
parameters and buffers are broadcast from rank 0. With more than one worker, batch-norm layers get
the communicator's all-reduce, so their statistics are over the global batch (sync batch-norm).
"""
from contextlib import contextmanager

import numpy as np

from distbp.nn.module import Module
from distbp.parallel.reducer import Reducer


def model_signature(module):
    """[(name, shape, dtype)] for every parameter and buffer, in registration order."""
    sig = [[n, list(p.data.shape), str(p.data.dtype)] for n, p in module.named_parameters()]
    sig += [[n, list(np.shape(b.data if hasattr(b, "data") else b)),
             str((b.data if hasattr(b, "data") else b).dtype)] for n, b in module.named_buffers()]
    return sig


def check_same_model(module, comm):
    """Raise naming the first parameter that differs between rank 0 and another rank."""
    mine = model_signature(module)
    sigs = comm.allgather_object(mine)
    ref = sigs[0]
    for rank, sig in enumerate(sigs[1:], start=1):
        if sig == ref:
            continue
        for i in range(max(len(ref), len(sig))):
            a = ref[i] if i < len(ref) else None
            b = sig[i] if i < len(sig) else None
            if a != b:
                raise RuntimeError(
                    f"rank {rank} built a different model than rank 0: first difference at "
                    f"parameter #{i}: rank 0 has {_describe(a)}, rank {rank} has {_describe(b)}")
    return ref


def _describe(entry):
    if entry is None:
        return "nothing"
    name, shape, dtype = entry
    return f"{name!r} {tuple(shape)} {dtype}"


def _arrays(module):
    out = [p.data for _, p in module.named_parameters()]
    out += [b.data if hasattr(b, "data") else b for _, b in module.named_buffers()]
    return out


def broadcast_state(module, comm, root=0):
    """Broadcast every parameter and buffer from `root`, packed into one buffer per dtype."""
    by_dtype = {}
    for a in _arrays(module):
        by_dtype.setdefault(a.dtype.str, []).append(a)
    for key in sorted(by_dtype):
        arrays = by_dtype[key]
        flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)
        comm.broadcast(flat, root=root)
        offset = 0
        for a in arrays:
            a[...] = flat[offset:offset + a.size].reshape(a.shape)
            offset += a.size


def _sum_in_place(comm):
    def allreduce(array):
        return comm.allreduce(array, op="sum")
    return allreduce


class DistributedDataParallel(Module):
    def __init__(self, module, comm, bucket_mb=1.0, tracer=None, shard_optimizer=False):
        super().__init__()
        self.module = module
        self.comm = comm
        if comm.size > 1:
            check_same_model(module, comm)
            broadcast_state(module, comm)
            for m in module.modules():
                if hasattr(m, "allreduce") and hasattr(m, "running_mean"):
                    m.allreduce = _sum_in_place(comm)
        self.reducer = Reducer(list(module.parameters()), comm, bucket_mb, tracer=tracer,
                               shard=shard_optimizer)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_sync(self):
        self.reducer.finish()

    @contextmanager
    def no_sync(self):
        with self.reducer.no_sync():
            yield
