"""`distbp train --backend ray`: the ordinary Trainer with the parameter servers as its update.

Forward, backward, data, evaluation, metrics and checkpoints are the Trainer's. What changes:
  * the update strategy is distbp.ray.worker.ParameterServerSync (push gradients, pull
    parameters) instead of the DDP's all-reduce, whose hooks are removed;
  * rank 0's checkpoints take the optimizer state from the servers, in the per-parameter layout
    the other backends write, so a run can be resumed with any backend;
  * on --resume only rank 0 reads the run directory; the others get the position from it, and
    the parameters by the DDP broadcast (the nodes of a cluster need not share a disk);
  * resume="servers" (a new membership of an elastic run, distbp/ray/elastic.py): every rank
    takes the position (steps done and skipped, the lr schedule) and the parameters from the
    parameter servers, which hold the run's state in memory: no checkpoint is read, and the
    step-addressed loader re-shards the same global batches over the new world.
"""
import json
from pathlib import Path

import distbp
from distbp.parallel.ddp import broadcast_state
from distbp.ray import launch
from distbp.ray.worker import ParameterServerSync
from distbp.train import checkpoint as ckpt
from distbp.train.trainer import Trainer


class RayTrainer(Trainer):
    def __init__(self, cfg, out_dir, comm, servers, resume=False, trace=False, log=None,
                 quiet=False, generation=0):
        self.servers, self.from_servers = servers, resume == "servers"
        super().__init__(cfg, out_dir, comm, resume=resume, trace=trace, log=log, quiet=quiet)
        self.ddp.reducer.remove_hooks()
        self.asynchronous = cfg["dist"]["max_staleness"] > 0
        self.sync = ParameterServerSync(list(self.model.named_parameters()), servers, self.rank,
                                        self.asynchronous, self.tracer, generation)
        if self.from_servers:
            self.sync.pull_servers()
        elif self.is_main:
            self.sync.load_servers(self.optimizer.state_dict(), self.scheduler.state_dict(),
                                   self.steps, self.start_step, self.skipped_steps)
        comm.barrier()

    def _resume(self):
        if self.resume_from_servers():
            return
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

    def resume_from_servers(self):
        """Every rank: the position of an elastic run's new membership, from server 0 (all
        servers hold the same; the parameters are pulled once the update strategy exists)."""
        import ray
        if not self.from_servers:
            return False
        pos = ray.get(self.servers[0].position.remote())
        self.start_step, self.skipped_steps = pos["completed"], pos["skipped"]
        self.scheduler.load_state_dict(pos["scheduler"])
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
            group["lr"] = lr
        return True

    def save_checkpoint(self, step):
        if self.is_main:
            groups = self.optimizer.state_dict()["param_groups"]
            self.optimizer.load_state_dict({"state": self.sync.optimizer_state(),
                                            "param_groups": groups})
        super().save_checkpoint(step)

    def _summary(self, step, final_loss, last_eval, samples, train_time):
        summary = super()._summary(step, final_loss, last_eval, samples, train_time)
        summary.update(ps_shards=len(self.servers),
                       mode="async" if self.asynchronous else "sync")
        if self.is_main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary


def fit_worker(cfg, out_dir, comm, servers, resume=False, trace=False, quiet=False, generation=0):
    """What each Ray Worker actor runs (once per membership in an elastic run)."""
    return RayTrainer(cfg, out_dir, comm, servers, resume=resume, trace=trace, quiet=quiet,
                      generation=generation).fit()


def run_ray(cfg, out, resume=False, address=None, trace=False, quiet=False):
    """Train on Ray: parameter servers and workers as actors (distbp.ray.launch.run_ray). The
    driver's counts (restarts, membership_changes) join rank 0's summary.json here."""
    summary = launch.run_ray(cfg, out, resume=resume, address=address, trace=trace, quiet=quiet,
                             entry=fit_worker)
    path = Path(out) / "summary.json"
    if path.exists():
        on_disk = json.loads(path.read_text())
        on_disk.update({k: summary[k] for k in ("restarts", "membership_changes") if k in summary})
        ckpt.atomic_write(path, json.dumps(on_disk, indent=1).encode())
    return summary
