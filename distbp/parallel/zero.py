"""ZeroRedundancyOptimizer: each rank keeps and updates one shard of the optimizer (ZeRO stage 1),
with torch.distributed.optim.ZeroRedundancyOptimizer's signature.

    ddp = DistributedDataParallel(model)
    opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.AdamW, lr=1e-3)
    loss.backward()          # with a DDP around the parameters: buckets reduce-scattered
    opt.step()               # my shard updated, then the parameters all-gathered

Plain data parallelism makes every rank run the same optimizer step over all parameters, with all
of the optimizer state. Here rank r updates only its shard of the parameters with an
`optimizer_class` optimizer and the updated shards are all-gathered into every rank's parameters:
each rank does 1/N of the optimizer's work and holds 1/N of its state (DeepSpeed's ZeRO-1).

With a DistributedDataParallel over the parameters (made before this optimizer), the optimizer
switches its reducer to shard mode: buckets are reduce-scattered instead of all-reduced, so rank r
receives the reduced gradient of its shard only, and the bytes on the wire are those of one
all-reduce (reduce-scatter + all-gather). The shards are then the buckets' (comm.shard_bounds of
each). Without a DDP the gradients must already be whole on every rank (reduced by hand, or one
process); the parameters are laid out in per-dtype segments and sharded the same way.

Either way every parameter becomes a view of one flat buffer per bucket or segment (so the
all-gather writes straight into the parameters: torch's parameters_as_bucket_view=True, always),
and the wrapped optimizer sees one `flat.Piece` per part of a parameter in this rank's shard; every
distbp optimizer is elementwise, so the numbers are those of the whole parameter, and every rank
ends with the owners' bits. A parameter whose grad is None is left alone, as by a plain optimizer.

overlap_allgather(module) hides the all-gather behind the next forward pass: step() then only
starts the segments' all-gathers (on the communicator's thread, in the order the forward first uses
them) and a forward pre-hook on each submodule waits for the segments holding its own parameters
before it runs. Until the forward (or wait_parameters()) the parameters hold stale values on the
ranks that do not own them: read them only after wait_parameters(). step(), state_dict() and
load_state_dict() wait first. The time spent waiting is the exposed communication.

state_dict() and load_state_dict() use the plain per-parameter layout (indices in `params` order,
as a plain optimizer over them has), so checkpoints move freely between sharded and unsharded runs
and any world size. Both are collectives: every rank must call them.
"""
import time

import numpy as np

from distbp.optim.optimizer import Optimizer
from distbp.parallel import flat
from distbp.parallel.ddp import _default_group, _instances

SEGMENT_BYTES = 8 * 2**20     # segment size without a DDP (one all-gather each)


class _Segment:
    """Parameters laid end to end in one flat buffer; this rank owns [lo, hi) of it."""

    def __init__(self, params, buffer, comm, index):
        self.params, self.buffer = params, buffer
        self.lo, self.hi = comm.shard_bounds(buffer.size)
        self.pieces = flat.pieces([p.data.size for p in params], self.lo, self.hi)
        self.model_index = index    # [position in `params` of each of self.params]


def _owner(params):
    """The DistributedDataParallel whose reducer has every one of `params`, if any."""
    ids = {id(p) for p in params}
    for ddp in list(_instances):
        if ids <= set(ddp.reducer._where):
            return ddp
    return None


def _lay_out(params, comm):
    """Per-dtype segments in registration order; each p.data becomes a view of its segment."""
    out = []
    for run in flat.group(params, SEGMENT_BYTES):
        buf = comm.empty(sum(p.data.size for p in run), run[0].data.dtype)
        offset = 0
        for p in run:
            view = buf[offset:offset + p.data.size].reshape(p.data.shape)
            view[...] = p.data
            p.data = view
            offset += p.data.size
        out.append((run, buf))
    return out


class ZeroRedundancyOptimizer(Optimizer):
    def __init__(self, params, optimizer_class, process_group=None, parameters_as_bucket_view=False,
                 overlap_with_ddp=False, **defaults):
        if overlap_with_ddp:
            raise NotImplementedError("ZeroRedundancyOptimizer(overlap_with_ddp=True) is not "
                                      "supported; the step all-gathers after the optimizer")
        params = list(params)
        if params and isinstance(params[0], dict):
            if len(params) != 1:
                raise ValueError("ZeroRedundancyOptimizer supports one parameter group, got "
                                 f"{len(params)}")
            params = list(params[0]["params"])
        if not params:
            raise ValueError("ZeroRedundancyOptimizer got an empty parameter list")
        self.params = params
        self._model_params = params      # what the DDP step guard checks (ddp._refuse_unreduced)
        index = {id(p): i for i, p in enumerate(params)}
        ddp = _owner(params)
        if ddp is not None:
            self.comm = ddp.comm
            self.reducer = ddp.reducer
            self.reducer.enable_sharding()
            runs = [(b.params, buf) for b, buf in zip(self.reducer.buckets,
                                                        self.reducer.parameter_buffers())]
            runs = [(ps, buf) for ps, buf in runs if any(id(p) in index for p in ps)]
            missing = [p for ps, _ in runs for p in ps if id(p) not in index]
            if missing:
                raise ValueError("ZeroRedundancyOptimizer: give it every parameter of the "
                                 "DistributedDataParallel model (it shards the DDP's buckets)")
        else:
            self.comm = process_group or _default_group()
            self.reducer = None
            runs = _lay_out(params, self.comm)
        self.segments = [_Segment(ps, buf, self.comm, [index[id(p)] for p in ps])
                         for k, (ps, buf) in enumerate(runs)]
        # the wrapped optimizer's parameters: my pieces, segment by segment
        self.pieces = []
        self._piece_of = []      # (segment, (i, a, b)) per piece
        for seg in self.segments:
            for i, a, b in seg.pieces:
                self.pieces.append(flat.Piece(seg.params[i].data.reshape(-1)[a:b]))
                self._piece_of.append((seg, (i, a, b)))
        if not self.pieces:         # more ranks than elements: a piece of nothing keeps the
            self.pieces.append(flat.Piece(np.zeros(0, self.segments[0].buffer.dtype)))  # groups
        self.optim = optimizer_class(self.pieces, **defaults)
        self.defaults = self.optim.defaults
        self.state = self.optim.state
        self.tracer = self.reducer.tracer if self.reducer else None
        self.allgather_seconds = 0.0     # time the caller was blocked on the all-gather
        self._pending = []               # [(segment, Work)] of a deferred all-gather, issue order
        self._order = None               # segments in forward order, when overlapping
        self._hooks = []

    def overlap_allgather(self, module):
        """Defer each step's parameter all-gather to the forward pass of `module` (see above)."""
        if self._hooks:
            raise RuntimeError("ZeroRedundancyOptimizer.overlap_allgather() was called already")
        seg_of = {id(p): k for k, seg in enumerate(self.segments) for p in seg.params}
        first_use = {}          # segment -> position of its first parameter in module order
        for pos, p in enumerate(module.parameters()):
            k = seg_of.get(id(p))
            if k is not None:
                first_use.setdefault(k, pos)
        missing = [k for k in range(len(self.segments)) if k not in first_use]
        if missing:
            raise ValueError("ZeroRedundancyOptimizer.overlap_allgather: the module does not hold "
                             f"the parameters of segment(s) {missing}; pass the model it optimizes")
        self._order = sorted(range(len(self.segments)), key=first_use.__getitem__)
        for m in module.modules():
            needs = {seg_of[id(p)] for p in m._parameters.values()
                     if p is not None and id(p) in seg_of}
            if needs:
                self._hooks.append(m.register_forward_pre_hook(
                    lambda mod, args, needs=frozenset(needs): self._wait(needs)))

    def wait_parameters(self):
        """Block until a deferred all-gather has written every parameter (no-op when none)."""
        self._wait(None)

    def _wait(self, needs):
        if not self._pending:
            return
        t0 = time.perf_counter()
        while self._pending and (needs is None or needs):
            k, work = self._pending.pop(0)     # FIFO: earlier segments finish first anyway
            work.wait()
            if needs is not None:
                needs = needs - {k}
        self._account(t0, time.perf_counter(), "wait for parameters")

    def _account(self, t0, t1, what):
        self.allgather_seconds += t1 - t0
        if self.reducer is not None:    # the blocked time is exposed communication
            self.reducer.stats["comm_seconds"] += t1 - t0
            self.reducer.stats["exposed_seconds"] += t1 - t0
        if self.tracer:
            self.tracer.complete(what, t0, t1, cat="comm")

    @property
    def param_groups(self):     # what lr schedulers change
        return self.optim.param_groups

    @param_groups.setter
    def param_groups(self, groups):
        self.optim.param_groups = groups

    @property
    def optimizer(self):       # the wrapped optimizer (torch's ZeroRedundancyOptimizer.optim)
        return self.optim

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    def shard_grads(self):
        """This rank's part of the gradient: one flat view per piece (None: no gradient)."""
        self._bind_grads()
        return [q.grad for q in self.pieces]

    def _bind_grads(self):
        for q, (seg, (i, a, b)) in zip(self.pieces, self._piece_of):
            g = seg.params[i].grad
            q.grad = None if g is None else g.reshape(-1)[a:b]

    def first_nonfinite(self):
        """Index (in `params`) of the first parameter whose part of this rank's shard of the
        gradient has a non-finite sum of squares, or None."""
        self._bind_grads()
        bad = [seg.model_index[i] for q, (seg, (i, _, _)) in zip(self.pieces, self._piece_of)
               if q.grad is not None and q.grad.size and not np.isfinite(np.vdot(q.grad, q.grad))]
        return min(bad) if bad else None

    def step(self, closure=None):
        if closure is not None:
            raise NotImplementedError("ZeroRedundancyOptimizer.step(closure) is not supported")
        self.wait_parameters()
        self._bind_grads()
        self.optim.step()
        if self._order is not None:     # started now, waited for by the next forward's hooks
            self._pending = [(k, self.comm.allgather_into_async(self.segments[k].buffer))
                             for k in self._order]
            return
        t0 = time.perf_counter()
        for seg in self.segments:
            self.comm.allgather_into(seg.buffer)
        self._account(t0, time.perf_counter(), "allgather parameters")

    # -- checkpoints: the per-parameter layout ---------------------------------------------------------
    def state_dict(self):
        """Collective. The state a plain optimizer over `params` would have, on every rank."""
        self.wait_parameters()
        mine = {}       # position in params -> {name: scalar | "array"} of my pieces
        for q, (seg, (i, _, _)) in zip(self.pieces, self._piece_of):
            s = self.optim.state.get(q)
            if s:
                mine[str(seg.model_index[i])] = {k: ("array" if isinstance(v, np.ndarray) else v)
                                                 for k, v in s.items()}
        kinds = {}
        for theirs in self.comm.allgather_object(mine):
            kinds.update(theirs)
        state = {}
        for seg in self.segments:
            held = [i for i, p in enumerate(seg.params) if str(seg.model_index[i]) in kinds]
            names = sorted({k for i in held for k, v in kinds[str(seg.model_index[i])].items()
                            if v == "array"})
            whole = {}
            for name in names:      # every rank's shard of this state, gathered into one buffer
                buf = np.zeros(seg.buffer.size, seg.buffer.dtype)
                for q, (s, (i, a, b)) in zip(self.pieces, self._piece_of):
                    if s is seg and name in self.optim.state.get(q, {}):
                        start = _offset(seg, i)
                        buf[start + a:start + b] = self.optim.state[q][name]
                whole[name] = self.comm.allgather_into(buf)
            for i in held:
                p, start = seg.params[i], _offset(seg, i)
                entry = {}
                for name, v in kinds[str(seg.model_index[i])].items():
                    entry[name] = (whole[name][start:start + p.data.size].reshape(p.data.shape)
                                   .copy() if v == "array" else v)
                state[seg.model_index[i]] = entry
        group = {k: v for k, v in self.optim.state_dict()["param_groups"][0].items()
                 if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict):
        """Load a per-parameter state (from state_dict() or a plain optimizer); keeps my shard."""
        self.wait_parameters()
        groups = state_dict["param_groups"]
        if len(groups) != 1:
            raise ValueError(f"loaded optimizer state has {len(groups)} parameter groups; "
                             "ZeroRedundancyOptimizer supports one")
        saved = {int(k): v for k, v in state_dict["state"].items()}
        for k, s in saved.items():
            p = self.params[k]
            for name, v in s.items():
                if isinstance(v, np.ndarray) and v.shape != p.data.shape:
                    raise ValueError(f"optimizer state '{name}' of parameter {k} has shape "
                                     f"{v.shape}, parameter has shape {p.data.shape}")
        piece_states = {}
        for j, (seg, (i, a, b)) in enumerate(self._piece_of):
            s = saved.get(seg.model_index[i])
            if s:
                piece_states[j] = flat.split_state({0: s}, [(0, a, b)])[0]
        group = dict(groups[0])
        group["params"] = list(range(len(self.pieces)))
        self.optim.load_state_dict({"state": piece_states, "param_groups": [group]})


def _offset(seg, i):
    return sum(p.data.size for p in seg.params[:i])
