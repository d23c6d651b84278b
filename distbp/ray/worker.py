"""A Ray worker: the ordinary Trainer, with the gradient reduction replaced by the parameter servers.

Forward, backward, data, evaluation, metrics and checkpoints are the Trainer's. What changes:
  * the DDP reducer's hooks are removed: gradients are not all-reduced between workers;
  * apply_update pushes the flat gradient, one slice per server shard (one numpy buffer each:
    inline in the call up to Ray's inline limit, else through the object store), and copies back
    the servers' new parameters (a large shard is one stored object shared by all workers);
  * rank 0's checkpoints take the optimizer state from the servers, in the per-parameter layout
    the other backends write, so a run can be resumed with any backend;
  * on --resume only rank 0 reads the run directory; the others get the position from it, and
    the parameters by the DDP broadcast (the nodes of a cluster need not share a disk).
"""
import fcntl
import json
import math
import os
import time
from pathlib import Path

import numpy as np

import distbp
from distbp.data import ensure_prepared
from distbp.logs import cli_logging
from distbp.nn.utils import clip_coefficient
from distbp.parallel.ddp import broadcast_state
from distbp.ray.comm import RayCommunicator
from distbp.ray.shards import join_state, pieces, shard_ranges, split_state
from distbp.train.trainer import NonFiniteGradient, Trainer


class RayTrainer(Trainer):
    def __init__(self, cfg, out_dir, comm, servers, resume=False, trace=False, log=None,
                 quiet=False):
        self.servers = servers
        super().__init__(cfg, out_dir, comm, resume=resume, trace=trace, log=log, quiet=quiet)
        self.ddp.reducer.remove_hooks()
        self.asynchronous = cfg["dist"]["max_staleness"] > 0
        self.params = list(self.model.parameters())
        dtypes = {p.data.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"--backend ray needs one parameter dtype, the model has {dtypes}")
        self.sizes = [p.data.size for p in self.params]
        self.offsets = np.cumsum([0] + self.sizes)
        self.flat = np.zeros(int(self.offsets[-1]), dtypes.pop())
        self.ranges = shard_ranges(self.sizes, len(servers))
        self.shard_pieces = [pieces(self.sizes, lo, hi) for lo, hi in self.ranges]
        if self.is_main:
            self._load_servers()
        comm.barrier()

    def _load_servers(self):
        import ray
        self._gather_params()
        sd = self.optimizer.state_dict()
        if len(sd["param_groups"]) != 1:
            raise ValueError("--backend ray supports one optimizer parameter group, got "
                             f"{len(sd['param_groups'])}")
        sched = self.scheduler.state_dict()
        ray.get([s.load.remote(pcs, self.flat[lo:hi], split_state(sd["state"], pcs),
                               sd["param_groups"], sched, self.steps)
                 for s, pcs, (lo, hi) in zip(self.servers, self.shard_pieces, self.ranges)])

    def _resume(self):
        info = None
        if self.is_main:
            super()._resume()
            info = {"step": self.start_step, "skipped": self.skipped_steps,
                    "scheduler": self.scheduler.state_dict(),
                    "rng": distbp.random.default_generator().bit_generator.state}
        info = self.comm.broadcast_object(info)
        broadcast_state(self.model, self.comm)         # rank 0's resumed parameters, to everyone
        if not self.is_main:
            self.start_step, self.skipped_steps = info["step"], info["skipped"]
            self.scheduler.load_state_dict(info["scheduler"])
            distbp.random.default_generator().bit_generator.state = info["rng"]

    # -- the step: push gradients, pull parameters ----------------------------------------------
    def _gather_params(self):
        for p, o in zip(self.params, self.offsets):
            self.flat[o:o + p.data.size] = p.data.reshape(-1)

    def _gather_grads(self):
        for p, o in zip(self.params, self.offsets):
            self.flat[o:o + p.data.size] = 0 if p.grad is None else p.grad.reshape(-1)

    def _scatter_params(self, shards):
        for (lo, hi), values in zip(self.ranges, shards):
            self.flat[lo:hi] = values
        for p, o in zip(self.params, self.offsets):
            p.data[...] = self.flat[o:o + p.data.size].reshape(p.data.shape)

    def _pull(self, shards):
        """Copy the servers' new parameters in. A shard above Ray's inline limit comes as one
        object reference shared by every worker; its zero-copy view into the object store is
        dropped right after the copy, so the store can free it as soon as all workers have it."""
        import ray
        stored = [k for k, v in enumerate(shards) if isinstance(v, ray.ObjectRef)]
        if stored:
            for k, values in zip(stored, ray.get([shards[k] for k in stored])):
                shards[k] = values
        self._scatter_params(shards)

    def apply_update(self, step):
        import ray
        t0 = time.perf_counter()
        self._gather_grads()
        g, servers = self.flat, self.servers
        if self.asynchronous:
            refs = [s.push_async.remote(step, self.rank, g[lo:hi])
                    for s, (lo, hi) in zip(servers, self.ranges)]
        else:
            refs = [s.push.remote(step, self.rank, g[lo:hi])
                    for s, (lo, hi) in zip(servers, self.ranges)]
        answers = ray.get(refs)
        if self.asynchronous:                     # each shard's own norm
            sq = sum(a[0] for a in answers)
            bad = min((a[1] for a in answers if a[1] is not None), default=None)
        else:                                     # every shard answers with the global norm
            sq, bad = answers[0][0], answers[0][1]
        norm, scale = self._decide(step, sq, bad)
        self._pull([a[2] for a in answers])
        del answers, refs
        if scale is not None:
            self.scheduler.step()                 # the local copy only tracks the lr for logging
        t1 = time.perf_counter()
        stats = self.ddp.reducer.stats
        stats["comm_seconds"] += t1 - t0
        stats["exposed_seconds"] += t1 - t0
        if self.tracer:
            self.tracer.complete("push gradients / pull parameters", t0, t1, cat="comm")
        return norm if scale is not None else float("nan")

    def _decide(self, step, sq, bad):
        """The local trainer's checks on the global gradient: -> (norm, scale or None to skip)."""
        t = self.cfg["train"]
        norm = math.sqrt(sq) if math.isfinite(sq) else float("inf")
        if t["warn_grad_norm"] and norm > t["warn_grad_norm"] and math.isfinite(norm):
            self.log(f"warning: step {step}: global gradient norm {norm:.3g} exceeds "
                     f"train.warn_grad_norm={t['warn_grad_norm']:g} (exploding gradients?)")
        if bad is not None:
            name = self._names()[bad]
            if t["nonfinite"] == "stop":
                raise NonFiniteGradient(f"step {step}: gradient of {name!r} is not finite "
                                        "(train.nonfinite=stop); lower optim.lr or set "
                                        "train.clip_grad_norm")
            self.skipped_steps += 1
            self.log(f"warning: step {step}: non-finite gradient in {name!r}; step skipped "
                     f"({self.skipped_steps} so far)")
            return norm, None
        if t["clip_grad_norm"]:
            return norm, clip_coefficient(norm, t["clip_grad_norm"])
        return norm, 1.0

    def _names(self):
        return [n for n, _ in self.model.named_parameters()]

    # -- checkpoints and summary ------------------------------------------------------------------
    def save_checkpoint(self, step):
        if self.is_main:
            import ray
            answers = ray.get([s.state.remote() for s in self.servers])
            shapes = [p.data.shape for p in self.params]
            state = join_state(shapes, self.shard_pieces, [a[0] for a in answers])
            groups = self.optimizer.state_dict()["param_groups"]
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        super().save_checkpoint(step)

    def _summary(self, step, final_loss, last_eval, samples, train_time):
        summary = super()._summary(step, final_loss, last_eval, samples, train_time)
        summary.update(ps_shards=len(self.servers),
                       mode="async" if self.asynchronous else "sync")
        if self.is_main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary


class Worker:
    """The Ray actor around one RayTrainer. Rank 0 runs on the driver's node and writes the run."""

    def __init__(self, rank, world, rendezvous, cwd):
        self.rank, self.world, self.rendezvous = rank, world, rendezvous
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)               # relative data and run paths mean what they meant to the user

    def fit(self, cfg, out_dir, servers, resume, trace, quiet=False):
        _ensure_data(cfg["data"])
        comm = RayCommunicator(self.rank, self.world, self.rendezvous, cfg["dist"]["timeout"])
        with cli_logging(self.rank):    # log records as the command's lines, forwarded by Ray
            trainer = RayTrainer(cfg, out_dir, comm, servers, resume=resume, trace=trace,
                                 quiet=quiet)
            return trainer.fit()


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
