"""How reduced gradients become an update: one policy, one object per way of syncing.

    norm, scale = decide(step, sq, first_bad, cfg["train"], log, skipped)   # the same everywhere
    sync.apply(scale)                     # None: skip the step; < 1: clip; then update

`decide` is the one update policy (non-finite skip/stop, warn_grad_norm, clip_grad_norm), made on
the global squared gradient norm; the trainer calls it for every strategy and the Ray parameter
servers call it on the shards' norms. A strategy object is built once and offers the same three
calls whatever the way:

  * `AllReduce`: the DDP all-reduced the gradients; every rank steps the whole optimizer.
  * `Sharded`: the DDP reduce-scattered them; each rank steps its shard (ZeroRedundancyOptimizer)
    and all-gathers the parameters.
  * the parameter server (distbp/ray/worker.py): gradients pushed, parameters pulled.

    sq, first_bad = sync.grad_sq_sum(step)   # global, identical bits on every rank
    sync.apply(scale)
    sync.gather_gradients()               # whole gradients on every rank (per-layer statistics)
"""
import math

import numpy as np

from distbp.errors import TrainingStopped
from distbp.nn.utils import clip_coefficient


class NonFiniteGradient(TrainingStopped):
    pass


def decide(step, sq, first_bad, t, log=None, skipped=0):
    """The update policy on the global squared gradient norm `sq`; `first_bad` names the first
    parameter with a non-finite gradient (or None); `t`: nonfinite ("skip" | "stop"),
    warn_grad_norm, clip_grad_norm (0: off). -> (norm, scale): scale None skips the step, else
    multiply the gradients by it (clipping, torch's coefficient) before the update."""
    norm = math.sqrt(sq) if math.isfinite(sq) else float("inf")
    warn = t["warn_grad_norm"]
    if log and warn and norm > warn and math.isfinite(norm):
        log(f"warning: step {step}: global gradient norm {norm:.3g} exceeds "
            f"train.warn_grad_norm={warn:g} (exploding gradients?)")
    if first_bad is not None:
        if t["nonfinite"] == "stop":
            raise NonFiniteGradient(f"step {step}: gradient of {first_bad!r} is not finite "
                                    "(train.nonfinite=stop); lower optim.lr or set "
                                    "train.clip_grad_norm")
        if log:
            log(f"warning: step {step}: non-finite gradient in {first_bad!r}; step skipped "
                f"({skipped + 1} so far)")
        return norm, None
    if t["clip_grad_norm"]:
        return norm, clip_coefficient(norm, t["clip_grad_norm"])
    return norm, 1.0


def squares(named_grads):
    """(sum of squared entries, name of the first array with a non-finite sum) of (name, grad)
    pairs, in order; None grads are skipped."""
    sq, bad = 0.0, None
    for name, g in named_grads:
        if g is None:
            continue
        s = float(np.vdot(g, g)) if g.size else 0.0
        if not math.isfinite(s) and bad is None:
            bad = name
        sq += s
    return sq, bad


class AllReduce:
    """Whole reduced gradients on every rank; every rank runs the same optimizer step."""

    def __init__(self, ddp, optimizer):
        self.ddp, self.optimizer = ddp, optimizer
        self.named = list(ddp.module.named_parameters())
        self.stats = ddp.reducer.stats

    def grad_sq_sum(self, step):
        return squares((n, p.grad) for n, p in self.named)

    def apply(self, scale):
        if scale is None:
            return
        if scale < 1.0:
            for _, p in self.named:
                if p.grad is not None:
                    p.grad *= scale
        self.optimizer.step()

    def gather_gradients(self):
        pass


class Sharded:
    """Each rank holds the reduced gradient of its shard and steps it (ZeroRedundancyOptimizer);
    the norm is one small all-reduce of the shards' squares (the same bits everywhere).
    overlap=True: the parameter all-gather runs behind the next forward pass
    (ZeroRedundancyOptimizer.overlap_allgather); whoever reads parameters between a step and the
    next forward calls wait_parameters() first (the trainer's per-layer snapshot does not yet, so
    the trainer keeps overlap off)."""

    def __init__(self, ddp, optimizer, overlap=False):
        self.ddp, self.optimizer, self.comm = ddp, optimizer, optimizer.comm
        self.names = [n for n, _ in ddp.module.named_parameters()]
        self.stats = ddp.reducer.stats
        if overlap:
            optimizer.overlap_allgather(ddp.module)

    def wait_parameters(self):
        self.optimizer.wait_parameters()

    def grad_sq_sum(self, step):
        sq = sum(float(np.vdot(g, g)) for g in self.optimizer.shard_grads()
                 if g is not None and g.size)
        sq = float(self.comm.allreduce(np.array([sq]))[0])
        if math.isfinite(sq):
            return sq, None
        bad = self.optimizer.first_nonfinite()                 # rare: find it, on every rank
        rows = self.comm.allgather(np.array([-1 if bad is None else bad]))[:, 0]
        bads = [int(b) for b in rows if b >= 0]
        return sq, self.names[min(bads)] if bads else None

    def apply(self, scale):
        if scale is None:
            return
        if scale < 1.0:
            for g in self.optimizer.shard_grads():
                if g is not None:
                    g *= scale
        self.optimizer.step()

    def gather_gradients(self):
        self.optimizer.wait_parameters()
        self.ddp.reducer.gather_gradients()
