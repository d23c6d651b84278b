"""A Ray worker: the Worker actor, and the parameter-server way of turning gradients into an update.

`ParameterServerSync` is the update strategy (distbp/parallel/update.py) of `--backend ray`:
  * grad_sq_sum() pushes the flat gradient, one slice per server shard (one numpy buffer each:
    inline in the call up to Ray's inline limit, else through the object store), and returns the
    global squared norm the servers computed (each shard's own, summed, in async mode);
  * apply(scale) copies back the servers' new parameters (a large shard is one stored object
    shared by all workers), whether or not the step was skipped: the servers decided alike.
  * optimizer_state() joins the servers' per-piece state into the per-parameter layout the other
    backends write, so a run can be resumed with any backend;
  * in an elastic run each push carries the membership's generation; a server that answers
    REGROUP (the membership is changing) makes grad_sq_sum raise Regroup, and pull_servers()
    gives a new membership's workers the servers' current parameters.

The Worker actor runs `entry(cfg, out_dir, comm, servers, resume, trace, quiet, generation)` (the
training side passes distbp.train.ray_trainer.fit_worker), so nothing here imports distbp.train.
An actor may run it several times, once per membership of an elastic run, with another rank.
"""
import fcntl
import os
import time
from pathlib import Path

import numpy as np

from distbp.data import ensure_prepared
from distbp.logs import cli_logging
from distbp.parallel.flat import join_state, pieces, shard_ranges, split_state
from distbp.ray.comm import RayCommunicator, Regroup
from distbp.ray.server import REGROUP


class ParameterServerSync:
    def __init__(self, named_params, servers, rank, asynchronous, tracer=None, generation=0):
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.servers, self.rank, self.asynchronous = servers, rank, asynchronous
        self.generation = generation
        self.tracer = tracer
        dtypes = {p.data.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"--backend ray needs one parameter dtype, the model has {dtypes}")
        self.sizes = [p.data.size for p in self.params]
        self.offsets = np.cumsum([0] + self.sizes)
        self.flat = np.zeros(int(self.offsets[-1]), dtypes.pop())
        self.ranges = shard_ranges(self.sizes, len(servers))
        self.shard_pieces = [pieces(self.sizes, lo, hi) for lo, hi in self.ranges]
        self.stats = {"comm_seconds": 0.0, "exposed_seconds": 0.0}
        self._answers = None

    def load_servers(self, optimizer_state, scheduler_state, total_steps, start_step=0,
                     skipped=0):
        """Rank 0: hand every server its shard of the parameters and of the optimizer state, and
        the position (steps done and skipped)."""
        import ray
        self._gather_params()
        sd = optimizer_state
        if len(sd["param_groups"]) != 1:
            raise ValueError("--backend ray supports one optimizer parameter group, got "
                             f"{len(sd['param_groups'])}")
        ray.get([s.load.remote(pcs, self.flat[lo:hi], split_state(sd["state"], pcs),
                               sd["param_groups"], scheduler_state, total_steps, start_step,
                               skipped)
                 for s, pcs, (lo, hi) in zip(self.servers, self.shard_pieces, self.ranges)])

    def pull_servers(self):
        """Take the servers' current parameters (a worker joining an elastic run)."""
        self._pull([s.parameters.remote() for s in self.servers])

    def optimizer_state(self):
        """The servers' optimizer state in the per-parameter layout {index: {name: value}}."""
        import ray
        answers = ray.get([s.state.remote() for s in self.servers])
        shapes = [p.data.shape for p in self.params]
        return join_state(shapes, self.shard_pieces, [a[0] for a in answers])

    # -- the step: push gradients, pull parameters ----------------------------------------------
    def grad_sq_sum(self, step):
        import ray
        self._t0 = time.perf_counter()
        for p, o in zip(self.params, self.offsets):
            self.flat[o:o + p.data.size] = 0 if p.grad is None else p.grad.reshape(-1)
        g = self.flat
        if self.asynchronous:
            refs = [s.push_async.remote(step, self.rank, g[lo:hi])
                    for s, (lo, hi) in zip(self.servers, self.ranges)]
        else:
            refs = [s.push.remote(step, self.rank, g[lo:hi], self.generation)
                    for s, (lo, hi) in zip(self.servers, self.ranges)]
        answers = ray.get(refs)
        if any(a == REGROUP for a in answers):   # all or none: the servers aborted the step
            raise Regroup(f"rank {self.rank}: step {step}: the membership is changing")
        if self.asynchronous:                     # each shard's own norm
            sq = sum(a[0] for a in answers)
            bad = min((a[1] for a in answers if a[1] is not None), default=None)
        else:                                     # every shard answers with the global norm
            sq, bad = answers[0][0], answers[0][1]
        self._answers = [a[2] for a in answers]
        return sq, None if bad is None else self.names[bad]

    def apply(self, scale):
        """Take the servers' parameters (they applied the same decision)."""
        shards, self._answers = self._answers, None
        self._pull(shards)
        t1 = time.perf_counter()
        self.stats["comm_seconds"] += t1 - self._t0
        self.stats["exposed_seconds"] += t1 - self._t0
        if self.tracer:
            self.tracer.complete("push gradients / pull parameters", self._t0, t1, cat="comm")

    def gather_gradients(self):
        pass

    def _gather_params(self):
        for p, o in zip(self.params, self.offsets):
            self.flat[o:o + p.data.size] = p.data.reshape(-1)

    def _pull(self, shards):
        """Copy the servers' new parameters in. A shard above Ray's inline limit comes as one
        object reference shared by every worker; its zero-copy view into the object store is
        dropped right after the copy, so the store can free it as soon as all workers have it."""
        import ray
        shards = list(shards)
        stored = [k for k, v in enumerate(shards) if isinstance(v, ray.ObjectRef)]
        if stored:
            for k, values in zip(stored, ray.get([shards[k] for k in stored])):
                shards[k] = values
        for (lo, hi), values in zip(self.ranges, shards):
            self.flat[lo:hi] = values
        del shards
        for p, o in zip(self.params, self.offsets):
            p.data[...] = self.flat[o:o + p.data.size].reshape(p.data.shape)


class Worker:
    """The Ray actor around one training worker. Rank 0 runs on the driver's node and writes the
    run (in an elastic run, rank 0 is the oldest member: after rank 0's death, another node's)."""

    def __init__(self, cwd):
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)               # relative data and run paths mean what they meant to the user

    def ready(self, entry, cfg):
        """Imports done (unpickling `entry` imports the training side) and the data set here:
        what an elastic run waits for before a new member joins at a step boundary."""
        _ensure_data(cfg["data"])
        return os.getpid()

    def fit(self, entry, cfg, out_dir, servers, resume, trace, quiet=False, group=None):
        """group: (rank, world, rendezvous, generation). Returns entry's summary, or
        {"regroup": True} when the membership changed under it (elastic runs)."""
        rank, world, rendezvous, generation = group
        _ensure_data(cfg["data"])
        comm = RayCommunicator(rank, world, rendezvous, cfg["dist"]["timeout"])
        with cli_logging(rank):         # log records as the command's lines, forwarded by Ray
            try:
                return entry(cfg, out_dir, comm, servers, resume=resume, trace=trace, quiet=quiet,
                             generation=generation)
            except Regroup:
                return {"regroup": True}


def _ensure_data(data_cfg):
    """A node of a cluster may lack a built-in data set the driver prepared: make it here, once per
    node (the lock keeps two workers of one node from writing it together)."""
    path = Path(data_cfg["path"])
    if data_cfg["name"] == "parquet" or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_prepared(data_cfg)
