"""ZeroRedundancyOptimizer: each rank keeps and updates one shard of the optimizer (ZeRO stage 1).

    ddp = DistributedDataParallel(model, comm, shard_optimizer=True)
    opt = ZeroRedundancyOptimizer(ddp.reducer, lambda params: optim.AdamW(params, lr=1e-3))
    loss.backward(); ddp.finish_gradient_sync()   # buckets reduce-scattered, not all-reduced
    opt.step()                                    # my shard updated, then parameters all-gathered

Plain data parallelism makes every rank run the same optimizer step over all parameters, with all
of the optimizer state. Here the reducer's gradient buckets are reduce-scattered instead of
all-reduced: rank r receives the full sum of its shard only (comm.shard_bounds of each bucket),
updates the matching shard of the parameters with the wrapped optimizer, and the updated shards are
all-gathered into every rank's parameters. The bytes on the wire are those of one all-reduce
(reduce-scatter + all-gather), but each rank does 1/N of the optimizer's work and holds 1/N of its
state (DeepSpeed's ZeRO-1, torch.distributed.optim.ZeroRedundancyOptimizer).

So that the all-gather can write straight into the parameters, each bucket's parameters become views
of one flat buffer laid out like the bucket (Reducer.parameter_buffers: p.data is rebound once;
every optimizer and load_state_dict update p.data in place). The wrapped optimizer sees one flat
"parameter" per bucket: every distbp optimizer is elementwise, so updating a flat range gives the
same numbers as updating each parameter whole, and every rank ends with the owners' bits.

state_dict() and load_state_dict() use the plain per-parameter layout (indices in
model.parameters() order, as build_optimizer's optimizer has), so checkpoints move freely between
sharded and unsharded runs and any world size. Both are collectives: every rank must call them.
"""
import time

import numpy as np

from distbp.tensor import Tensor


class ZeroRedundancyOptimizer:
    def __init__(self, reducer, make_optimizer, params=None):
        """`reducer`: a Reducer with shard=True; `make_optimizer(list of Tensors)` builds the wrapped
        optimizer (one parameter group); `params`: the model's parameters in the order a plain
        optimizer would list them (default: the reducer's), which fixes state_dict's indices."""
        if not reducer.shard:
            raise ValueError("ZeroRedundancyOptimizer needs a Reducer made with shard=True in a world "
                             "of more than one rank (DistributedDataParallel(..., shard_optimizer=True))")
        self.reducer, self.comm = reducer, reducer.comm
        self.params = list(params) if params is not None else list(reducer.params)
        self._index = {id(p): i for i, p in enumerate(self.params)}
        self.flat_params = reducer.parameter_buffers()
        self.bounds = [self.comm.shard_bounds(flat.size) for flat in self.flat_params]
        self.shards = [Tensor(flat[lo:hi]) for flat, (lo, hi) in zip(self.flat_params, self.bounds)]
        self.optimizer = make_optimizer(self.shards)
        self._stepped_round = reducer.rounds
        if len(self.optimizer.param_groups) != 1:
            raise ValueError("ZeroRedundancyOptimizer supports one parameter group, got "
                             f"{len(self.optimizer.param_groups)}")

    @property
    def param_groups(self):  # what lr schedulers change
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    def shard_grads(self):
        """This rank's shard of every bucket's reduced gradient (views; valid after finish())."""
        return [b.buffer[lo:hi] for b, (lo, hi) in zip(self.reducer.buckets, self.bounds)]

    def first_nonfinite(self):
        """Index (in self.params) of the first parameter whose part of this rank's gradient shard
        has a non-finite sum of squares (a non-finite entry, or an overflow), or None."""
        bad = []
        for b, (lo, hi) in zip(self.reducer.buckets, self.bounds):
            for p, r in zip(b.params, b.ranges):
                part = b.buffer[max(lo, r.start):min(hi, r.stop)]
                if part.size and not np.isfinite(np.vdot(part, part)):
                    bad.append(self._index[id(p)])
        return min(bad) if bad else None

    def step(self):
        if self.reducer.rounds == self._stepped_round:
            return      # no gradient reduced since the last step (a plain optimizer skips grad=None)
        self._stepped_round = self.reducer.rounds
        for shard, g in zip(self.shards, self.shard_grads()):
            shard.grad = g
        self.optimizer.step()
        t0 = time.perf_counter()
        for flat in self.flat_params:
            self.comm.allgather_into(flat)
        if self.reducer.tracer:
            self.reducer.tracer.complete("allgather parameters", t0, time.perf_counter(), cat="comm")

    # -- checkpoints: the per-parameter layout ---------------------------------------------------------
    def state_dict(self):
        """Collective. The state a plain optimizer over `params` would have, on every rank."""
        state = {}
        for b, (lo, hi), shard in zip(self.reducer.buckets, self.bounds, self.shards):
            mine = self.optimizer.state.get(shard)
            have = self.comm.allgather(np.array([mine is not None], np.int8))
            if not have.all():
                continue                                   # before the first step
            full = {}
            for name, value in mine.items():
                if isinstance(value, np.ndarray):
                    whole = np.zeros(b.buffer.size, value.dtype)
                    whole[lo:hi] = value
                    full[name] = self.comm.allgather_into(whole)
                else:
                    full[name] = value
            for p, r in zip(b.params, b.ranges):
                state[self._index[id(p)]] = {
                    name: (v[r].reshape(p.data.shape).copy() if isinstance(v, np.ndarray) else v)
                    for name, v in full.items()}
        group = {k: v for k, v in self.optimizer.state_dict()["param_groups"][0].items()
                 if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict):
        """Load a per-parameter state (from state_dict() or a plain optimizer); keeps my shard."""
        groups = state_dict["param_groups"]
        if len(groups) != 1:
            raise ValueError(f"loaded optimizer state has {len(groups)} parameter groups; "
                             "the sharded optimizer supports one")
        saved = {int(k): v for k, v in state_dict["state"].items()}
        shard_states = {}
        for k, (b, (lo, hi)) in enumerate(zip(self.reducer.buckets, self.bounds)):
            per_param = [saved.get(self._index[id(p)]) for p in b.params]
            if any(s is None for s in per_param):
                if any(s is not None for s in per_param):
                    i = next(self._index[id(p)] for p, s in zip(b.params, per_param) if s is None)
                    raise ValueError(f"optimizer state has no entry for parameter {i}")
                continue
            s = {}
            for name, value in per_param[0].items():
                if isinstance(value, np.ndarray):
                    parts = []
                    for p, ps in zip(b.params, per_param):
                        v = np.asarray(ps[name])
                        if v.shape != p.data.shape:
                            raise ValueError(f"optimizer state '{name}' of parameter "
                                             f"{self._index[id(p)]} has shape {v.shape}, "
                                             f"parameter has shape {p.data.shape}")
                        parts.append(v.reshape(-1))
                    s[name] = np.concatenate(parts)[lo:hi].astype(b.buffer.dtype)
                else:
                    s[name] = value
            shard_states[k] = s
        group = dict(groups[0])
        group["params"] = list(range(len(self.shards)))
        self.optimizer.load_state_dict({"state": shard_states, "param_groups": [group]})

