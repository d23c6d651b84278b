"""`distbp train --backend ray`: parameter servers and workers as Ray actors.

    distbp train --config configs/mnist1d_mlp.yaml --backend ray                  # local Ray
    RAY_ADDRESS=127.0.0.1:6379 distbp train --config ... --backend ray            # join a cluster
    RAY_AUTH_MODE=token ray job submit --working-dir . -- \
        distbp train --config configs/mnist1d_mlp.yaml --backend ray               # see launch/

The driver (this process) never touches the training data: each worker actor opens the Parquet
files and reads its own rows. Rank 0 is pinned to the driver's node and alone writes the run
directory. When a worker actor dies, every actor of the attempt is killed and, while fewer than
dist.max_failures restarts have happened, a new attempt resumes from the newest checkpoint (as Ray
Train does); otherwise the run fails with a message naming the worker. With dist.min_workers or
dist.max_workers set the run is elastic instead (elastic.py): it goes on with the survivors from
the servers' in-memory state and grows back when the cluster has capacity again.
"""
import os
import uuid
from pathlib import Path

from distbp.errors import JobFailed, TrainingStopped, UsageError
from distbp.logs import get_logger

logger = get_logger(__name__)

NAMESPACE = "distbp"
# Gradient and parameter buffers up to 4 MB travel inside the actor-call RPC (one copy each way):
# for a 300 KB bucket that halves the round trip against the shared-memory object store (4 ms vs
# 8 ms on 2 busy cores). Bigger buffers still go through the object store and are read zero-copy.
# An object nobody references is unpinned at once, but by default the raylet deletes such objects
# in batches, every second or per 100, so the store held up to a second of traffic: 50-60 objects
# (500+ MiB) with 9.4 MB buffers. Deleting each one when released keeps it to the step in flight.
SYSTEM_CONFIG = {"max_direct_call_object_size": 4 * 2**20,
                 "task_rpc_inlined_bytes_limit": 16 * 2**20,
                 "free_objects_period_milliseconds": 0}


class WorkerDied(RuntimeError):
    def __init__(self, rank, cause):
        super().__init__(f"ray worker {rank} died: {cause}")
        self.rank, self.cause = rank, cause


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'distbp[ray]'") from None
    return ray


def check_config(cfg):
    """Refuse what the parameter server does not do, before any actor starts."""
    from distbp.data import open_split
    from distbp.models import build_model
    model = build_model(cfg["model"], open_split(cfg["data"], "train").describe())
    norms = [n for n, m in model.named_modules() if hasattr(m, "running_mean")]
    if norms:
        raise UsageError(f"--backend ray does not synchronize batch-norm statistics; model "
                         f"{cfg['model']['name']!r} has batch-norm layer {norms[0]!r}: use "
                         "--backend local or mpi, or a model without batch-norm")
    if cfg["dist"]["max_staleness"] and cfg["train"]["clip_grad_norm"]:
        raise UsageError("train.clip_grad_norm needs the global gradient norm, which "
                         "dist.max_staleness > 0 (asynchronous mode) does not have: set one to 0")
    if cfg["dist"]["max_staleness"] and cfg["dist"]["max_failures"]:
        raise UsageError("dist.max_failures restarts replay from a checkpoint, which an "
                         "asynchronous run (dist.max_staleness > 0) cannot: set one to 0")
    d = cfg["dist"]
    if d["max_staleness"] and (d["min_workers"] or d["max_workers"]):
        raise UsageError("dist.min_workers / dist.max_workers (elastic) regroup at a step "
                         "boundary, which an asynchronous run (dist.max_staleness > 0) has not: "
                         "set dist.max_staleness=0")


def connect(address=None, workers=1):
    """Join RAY_ADDRESS / --address, else a Ray started on this machine, else start one.
    Returns True when this call started or joined Ray (and so should shut it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=True)
    else:
        try:
            ray.init(address="auto", namespace=NAMESPACE)
        except ConnectionError:
            ray.init(address="local", namespace=NAMESPACE, num_cpus=max(os.cpu_count() or 1,
                                                                        workers),
                     include_dashboard=False, dashboard_host="127.0.0.1",
                     _system_config=SYSTEM_CONFIG)
    return True


def run_ray(cfg, out, resume=False, address=None, trace=False, quiet=False, entry=None):
    """Run `entry(cfg, out, comm, servers, resume, trace, quiet)` in every worker actor (the
    training side's distbp.train.ray_trainer.fit_worker: this package does not import it)."""
    if entry is None:
        raise ValueError("run_ray needs entry=, the function each worker runs "
                         "(distbp.train.ray_trainer.run_ray passes fit_worker)")
    check_config(cfg)
    ray = _import_ray()
    started = connect(address, cfg["dist"]["workers"])
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < cfg["dist"]["workers"]:
            raise UsageError(f"dist.workers={cfg['dist']['workers']} needs one CPU each, the Ray "
                             f"cluster has {cpus:g}; lower --workers or add Ray workers")
        failures = 0
        while True:
            try:
                if cfg["dist"]["min_workers"] or cfg["dist"]["max_workers"]:
                    from distbp.ray.elastic import Elastic
                    summary = Elastic(cfg, out, entry).run(resume, trace, quiet)
                else:
                    summary = Attempt(cfg, out).run(entry, resume, trace, quiet)
                summary["restarts"] = failures
                return summary
            except WorkerDied as e:
                if failures >= cfg["dist"]["max_failures"]:
                    raise JobFailed(f"{e}; dist.max_failures={cfg['dist']['max_failures']} "
                                       "restarts allowed, so the run stops here (set "
                                       "dist.max_failures and checkpoint.every_steps to restart "
                                       "from the last checkpoint)") from None
                failures += 1
                resume = any((Path(out) / "checkpoints").glob("*.json"))
                logger.warning(f"{e}; restart {failures}/{cfg['dist']['max_failures']} from "
                               f"{'the last checkpoint' if resume else 'the start'}")
    finally:
        if started:
            ray.shutdown()


class Attempt:
    """One set of actors: K servers, one rendezvous, W workers. Killed as a whole on failure."""

    def __init__(self, cfg, out):
        ray = _import_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        from distbp.ray.comm import Rendezvous
        from distbp.ray.server import ParameterServer
        from distbp.ray.worker import Worker
        self.cfg, self.out = cfg, str(out)
        d = cfg["dist"]
        run = uuid.uuid4().hex[:8]
        self.rendezvous = ray.remote(num_cpus=0)(Rendezvous).options(
            name=f"{run}-rendezvous").remote(d["workers"])
        inline = SYSTEM_CONFIG["max_direct_call_object_size"]
        self.servers = [ray.remote(num_cpus=0)(ParameterServer).options(
            name=f"{run}-server-{k}").remote(k, cfg, d["workers"], inline)
            for k in range(d["ps_shards"])]
        ray.get([s.set_peers.remote(self.servers) for s in self.servers])
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        worker_cls = ray.remote(num_cpus=1, max_restarts=0)(Worker)
        self.workers = [worker_cls.options(name=f"{run}-worker-{r}",
                                           scheduling_strategy=here if r == 0 else "DEFAULT")
                        .remote(os.getcwd()) for r in range(d["workers"])]

    def run(self, entry, resume, trace, quiet=False):
        ray = _import_ray()
        world = len(self.workers)
        futures = {w.fit.remote(entry, self.cfg, self.out, self.servers, resume, trace, quiet,
                                group=(r, world, self.rendezvous, 0)): r
                   for r, w in enumerate(self.workers)}
        results = {}
        try:
            pending = list(futures)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                rank = futures[done[0]]
                try:
                    results[rank] = ray.get(done[0])
                except ray.exceptions.RayActorError as e:
                    raise WorkerDied(rank, _first_line(e)) from None
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, (UsageError, TrainingStopped)):
                        raise cause from None
                    what = f"{type(cause).__name__}: {cause}" if cause is not None else _first_line(e)
                    raise JobFailed(f"ray worker {rank} failed: {what.splitlines()[0]}") from e
        finally:
            self.kill()
        return results[0]

    def kill(self):
        ray = _import_ray()
        for actor in self.workers + self.servers + [self.rendezvous]:
            ray.kill(actor, no_restart=True)


def _first_line(e):
    text = str(e).strip().splitlines()
    return next((line for line in text if line.strip()), type(e).__name__)[:300]
