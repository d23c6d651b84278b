"""DistributedDataParallel: torch's wrapper and signature; the work is in the Reducer.

    model = DistributedDataParallel(model)          # the default group (distbp.distributed)
    loss = F.cross_entropy(model(x), y)             # a mean over this rank's batch, as with torch
    loss.backward()                                 # returns with the gradients reduced
    optimizer.step()

Averaging. With grad_reduction="mean" (the default) the result is the gradient of the mean over the
*global* batch, the union of every rank's batch, exactly, also when the ranks' batches differ in
size: each rank's weight is its number of samples (dim 0 of forward's first array argument).
torch's DDP weighs every rank by 1/world_size instead, which is biased when the shards are uneven
(43/43/42 samples: the 42 count as if they were 43); tests/parallel/test_ddp.py shows both.
How: forward all-reduces [samples, ...] asynchronously; backward multiplies the gradient arriving
at forward's outputs by A*n_r/N (n_r this rank's samples, N the sum, A the ranks taking part;
exactly 1 when the shards are even) and the reducer averages over the A ranks. Scaling at the
outputs keeps models whose ranks are coupled (sync batch-norm) exact, and averaging keeps terms
every rank adds alike (an L2 penalty on the parameters) at their value, as in torch.
grad_reduction="sum": a plain sum, for losses already normalised by the global batch (what
`distbp train` does); forward then runs no collective.

The reduction finishes inside backward() (a callback queued in the autograd engine), so
`finish_gradient_sync()` is a no-op kept for old code. Whether a backward reduces is decided, as in
torch, by the forward passes it goes through: one run inside `no_sync()` (or with
`require_backward_grad_sync = False`) accumulates locally; a backward through a forward run outside
reduces everything accumulated since. An optimizer step over parameters whose gradients were
accumulated but never reduced raises (an optimizer step pre-hook) instead of letting ranks diverge.

Parameters a backward does not reach contribute zeros; one that no rank used keeps grad None, so
optimizers leave it alone: no find_unused_parameters flag is needed (accepted and ignored, as are
device_ids, output_device, dim, check_reduction, gradient_as_bucket_view and static_graph; the
gradients are always views of the buckets after a reduction). bucket_cap_mb defaults to 1 MB
(torch: 25), where distbp's overlap measured best.

At construction every rank checks that all ranks built the same model (names, shapes, dtypes), and
parameters and buffers are broadcast from rank 0. With more than one rank, batch-norm layers get
the communicator's all-reduce: their statistics are over the global batch (sync batch-norm;
torch's broadcast_buffers is then unnecessary and no buffer is broadcast in forward).
"""
import hashlib
import weakref
from contextlib import contextmanager

import numpy as np

from distbp import autograd
from distbp.nn.module import Module
from distbp.optim.optimizer import register_optimizer_step_pre_hook
from distbp.parallel.reducer import FORWARD, ROUND, Reducer, wait_control
from distbp.tensor import Tensor


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


def check_same_parameters(module, comm, what="parameters"):
    """Raise naming the first rank whose parameters are not rank 0's bits (one SHA-256 digest
    each, all-gathered). -> the digest (hex). For code whose correctness is that every rank ends
    with the same bits (a compression hook): a rank that did not would train on silently."""
    h = hashlib.sha256()
    for p in module.parameters():
        h.update(np.ascontiguousarray(p.data).tobytes())
    rows = comm.allgather(np.frombuffer(h.digest(), np.uint8))
    bad = [r for r in range(1, comm.size) if not np.array_equal(rows[r], rows[0])]
    if bad:
        raise RuntimeError(f"rank {bad[0]}'s {what} differ from rank 0's: the ranks no longer "
                           "train the same model")
    return h.hexdigest()


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


def _default_group():
    try:
        from distbp.distributed import _get_default_group
    except ImportError:
        raise RuntimeError("Default process group has not been initialized, please make sure to "
                           "call init_process_group() (or pass process_group=)") from None
    return _get_default_group()


# -- forward passes: how many samples, and whether their backward reduces --------------------------

def _batch_size(args, kwargs):
    """dim 0 of the first array argument (looking into tuples, lists and dicts), or None."""
    stack = list(args) + list(kwargs.values())
    while stack:
        a = stack.pop(0)
        if isinstance(a, (Tensor, np.ndarray)):
            shape = a.data.shape if isinstance(a, Tensor) else a.shape
            return shape[0] if shape else 1
        if isinstance(a, (tuple, list)):
            stack[:0] = list(a)
        elif isinstance(a, dict):
            stack[:0] = list(a.values())
    return None


class _Forward:
    """One forward pass: its samples, its sync decision, the graph nodes marking its outputs, and
    (mean) the all-reduce of the samples, whose result sets the scale of its outputs' gradient."""

    def __init__(self, samples, sync, control, world, on_control):
        self.samples, self.sync, self.control, self.world = samples, sync, control, world
        self.on_control = on_control
        self.nodes = []
        self._scale = None
        self.active = world

    def scale(self):
        if self._scale is None:
            if self.control is None:
                self._scale = 1.0
            else:
                total = wait_control(self.control)
                self.control = None
                self.on_control(total)
                self.active = int(round(total[1]))
                if total[0] <= 0:
                    raise RuntimeError("DistributedDataParallel: every rank's forward got an empty "
                                       "batch (0 samples in dim 0 of the first array argument)")
                self._scale = self.active * self.samples / float(total[0])
        return self._scale

    def reached_by(self, task):
        return any(task.reaches(n) for n in (ref() for ref in self.nodes) if n is not None)

    def alive(self):
        return any(ref() is not None for ref in self.nodes)


class _Scale(autograd.Function):
    """Identity in forward; backward multiplies the gradient by its forward's sample weight."""

    @staticmethod
    def forward(ctx, x, record=None):
        ctx.record = record
        return x

    @staticmethod
    def backward(ctx, g):
        s = ctx.record.scale()
        return g if s == 1.0 else g * s


def _mark(out, record):
    """Pass every Tensor of forward's output (tuples, lists, dicts) through _Scale."""
    if isinstance(out, Tensor):
        if not out.requires_grad:
            return out
        marked = _Scale.apply(out, record=record)
        record.nodes.append(weakref.ref(marked._ctx))
        return marked
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return type(out)(*(_mark(o, record) for o in out))
    if isinstance(out, (tuple, list)):
        return type(out)(_mark(o, record) for o in out)
    if isinstance(out, dict):
        return type(out)((k, _mark(v, record)) for k, v in out.items())
    return out


# -- the optimizer guard -------------------------------------------------------------------------

_instances = weakref.WeakSet()


def _refuse_unreduced(optimizer, args, kwargs):
    if not _instances:
        return
    params = getattr(optimizer, "_model_params", None)
    if params is None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
    for ddp in list(_instances):
        ddp._check_reduced(params)


register_optimizer_step_pre_hook(_refuse_unreduced)


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False, *,
                 comm=None, tracer=None, grad_reduction="mean"):
        super().__init__()
        if hasattr(device_ids, "allreduce"):
            raise TypeError("DistributedDataParallel(module, device_ids, ...): pass the "
                            "communicator as process_group= (or comm=), as in torch")
        if grad_reduction not in ("mean", "sum"):
            raise ValueError(f"grad_reduction must be 'mean' or 'sum', got {grad_reduction!r}")
        if comm is not None and process_group is not None and comm is not process_group:
            raise ValueError("pass the communicator as process_group= or comm=, not two different ones")
        comm = comm or process_group or _default_group()
        self.module = module
        self.comm = self.process_group = comm
        self.grad_reduction = grad_reduction
        self.require_backward_grad_sync = True
        self.broadcast_buffers = broadcast_buffers
        if comm.size > 1:
            check_same_model(module, comm)
            broadcast_state(module, comm)
            for m in module.modules():
                if hasattr(m, "allreduce") and hasattr(m, "running_mean"):
                    m.allreduce = _sum_in_place(comm)
        self.reducer = Reducer(list(module.parameters()), comm,
                               1.0 if bucket_cap_mb is None else bucket_cap_mb, tracer=tracer,
                               prepare=self._prepare)
        self._forwards = []     # forward passes whose backward has not run yet
        self._active = comm.size
        self._joined = False
        self._throw = False     # inside join(throw_on_early_termination=True)
        self.reducer.on_control = self._check_early
        _instances.add(self)

    def forward(self, *inputs, **kwargs):
        if self._joined:
            raise RuntimeError("DistributedDataParallel: forward() after this rank left its join() "
                               "context")
        samples = _batch_size(inputs, kwargs)
        control = None
        mean = self.grad_reduction == "mean" and self.comm.size > 1
        if mean and autograd.is_grad_enabled():
            if samples is None:
                raise ValueError("DistributedDataParallel(grad_reduction='mean') weighs each rank by "
                                 "its samples, dim 0 of forward's first array argument, and forward "
                                 "got no array: pass the batch first, or use grad_reduction='sum' "
                                 "with a loss normalised by the global batch")
            control = self.comm.allreduce_async(self.reducer.control(samples, FORWARD))
        out = self.module(*inputs, **kwargs)
        if not autograd.is_grad_enabled():
            return out
        record = _Forward(samples or 0, self.require_backward_grad_sync, control, self.comm.size,
                          self._check_early)
        out = _mark(out, record)
        if record.nodes:
            self._forwards.append(record)
        elif control is not None:
            record.scale()          # nothing to backpropagate: just finish the collective
        return out

    def _prepare(self, task):
        """The reducer's first hook in a backward: -> (reduce?, weight of every local gradient)."""
        reached = [f for f in self._forwards if f.reached_by(task)]
        self._forwards = [f for f in self._forwards if f not in reached and f.alive()]
        sync = any(f.sync for f in reached) if reached else self.require_backward_grad_sync
        if not sync:
            return False, 1.0
        if self.grad_reduction == "sum":
            return True, 1.0
        for f in reached:
            f.scale()
            self._active = f.active
        return True, 1.0 / self._active

    def _check_early(self, total):
        """An active rank's view of a control all-reduce: under join(throw_on_early_termination=
        True), a rank that has left ends the loop on every rank."""
        if self._throw and int(round(total[1])) < self.comm.size:
            gone = self.comm.size - int(round(total[1]))
            raise RuntimeError(f"rank {self.comm.rank}: {gone} rank(s) ran out of inputs before "
                               "the others (join(throw_on_early_termination=True))")

    def _check_reduced(self, params):
        if not self.reducer.unreduced:
            return
        names = {id(p): n for n, p in self.module.named_parameters()}
        for p in params:
            if id(p) in names and p.grad is not None:
                raise RuntimeError(
                    f"optimizer.step(): parameter {names[id(p)]!r} holds a gradient accumulated "
                    "under no_sync() (or require_backward_grad_sync=False) that was never reduced "
                    "across ranks; run the last forward and backward of the accumulation outside "
                    "no_sync() before step(), or zero_grad()")

    def finish_gradient_sync(self):
        """Kept for old code: backward() already returns with the gradients reduced."""

    @contextmanager
    def no_sync(self):
        """Backward passes through forwards run inside accumulate gradients locally, as in torch."""
        old, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def register_comm_hook(self, state, hook):
        """hook(state, bucket: GradBucket) -> distbp.futures.Future of the reduced flat buffer,
        called for every bucket of every round in place of the default all-reduce. The buffer
        already holds this rank's weighted contribution: a plain sum over ranks is the result."""
        self.reducer.register_comm_hook(state, hook)

    @contextmanager
    def join(self, divide_by_initial_world_size=True, enable=True,
             throw_on_early_termination=False):
        """Ranks may run different numbers of iterations inside: one whose loop ends shadows the
        others' gradient collectives with zero contributions until every rank has left, then all
        ranks take the parameters of a rank that ran longest (torch's join). The averaging weighs
        ranks by samples, so a rank that left weighs nothing (divide_by_initial_world_size has no
        effect). Not with batch-norm (its statistics all-reduce in forward cannot be shadowed),
        ZeroRedundancyOptimizer or other collectives in the loop; a joined rank's optimizer state
        is not updated. throw_on_early_termination=True: instead, once a rank has run out every
        rank raises RuntimeError at its next gradient round."""
        if not enable or self.comm.size == 1:
            yield
            return
        norms = [n for n, m in self.module.named_modules() if hasattr(m, "running_mean")]
        if norms:
            raise RuntimeError(f"join(): batch-norm layer {norms[0]!r} all-reduces its statistics in "
                               "forward, which a joined rank cannot shadow; give every rank the "
                               "same number of batches (e.g. DistributedSampler(drop_last=True))")
        if self.reducer.shard:
            raise RuntimeError("join() does not shadow a ZeroRedundancyOptimizer's all-gather; give "
                               "every rank the same number of batches")
        self._throw = bool(throw_on_early_termination)
        try:
            yield
        finally:
            self._throw = False
        self._joined = True
        try:
            while True:
                total = self.comm.allreduce(self.reducer.control(active=0.0))
                active = int(round(total[1]))
                if active == 0:
                    break
                self.reducer.shadow(ROUND if round(total[2] / active) == ROUND else FORWARD)
                if throw_on_early_termination:
                    raise RuntimeError(f"rank {self.comm.rank} ran out of inputs before the "
                                       "others (join(throw_on_early_termination=True))")
            rounds = self.comm.allgather(np.array([self.reducer.rounds], np.int64))[:, 0]
            broadcast_state(self.module, self.comm, root=int(np.argmax(rounds)))
        finally:
            self._joined = False
