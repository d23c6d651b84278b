"""Elastic membership of `distbp train --backend ray` (dist.min_workers / dist.max_workers).

The parameter servers own the parameters, the optimizer state and the count of completed steps,
so a worker is replaceable. The driver runs the workers in memberships (generations): each has a
rendezvous and numbers its pushes. When a member dies (its actor or its node), the driver closes
the generation (servers.close: the step in flight is applied on every shard or on none) and aborts
its rendezvous; the survivors leave fit() at that step boundary and a new generation starts them
again with ranks 0..W-1 from the servers' state (RayTrainer, resume="servers"). The loader is
step-addressed (the global batch and every random draw depend on (seed, step, sample) only), so
the run follows the uninterrupted trajectory. While the membership is below max_workers and the
cluster has a free CPU, a new actor is started; once it is ready (imports, data) the generation
is closed at its next push, a step boundary, and the next one includes it. Below min_workers the
driver waits up to dist.elastic_wait for members, then fails naming what it waited for.

Each change: one log line, and a metrics.jsonl record {"kind": "membership", "step", "old_world",
"new_world", "seconds", "cause"}, seconds from the change being seen to the next completed step.
Rank 0 is the oldest member; the servers and each generation's rendezvous are pinned to the
driver's node, so that losing any other node loses only the workers on it (a rendezvous left to
the scheduler once landed on a node that went away and failed the survivors' fit with it).
"""
import json
import os
import time
import uuid
from pathlib import Path

from distbp.errors import JobFailed, TrainingStopped, UsageError
from distbp.logs import get_logger

logger = get_logger(__name__)


class Elastic:
    def __init__(self, cfg, out, entry):
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        from distbp.ray.launch import SYSTEM_CONFIG
        from distbp.ray.server import ParameterServer
        from distbp.ray.worker import Worker
        from distbp.train.config import elastic_bounds
        self.cfg, self.out, self.entry = cfg, str(out), entry
        d = cfg["dist"]
        self.low, self.high = elastic_bounds(d)
        self.run_id = uuid.uuid4().hex[:8]
        self.here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                   soft=False)
        inline = SYSTEM_CONFIG["max_direct_call_object_size"]
        self.servers = [ray.remote(num_cpus=0)(ParameterServer).options(
            name=f"{self.run_id}-server-{k}", scheduling_strategy=self.here).remote(
            k, cfg, d["workers"], inline) for k in range(d["ps_shards"])]
        ray.get([s.set_peers.remote(self.servers) for s in self.servers])
        self.worker_cls = ray.remote(num_cpus=1, max_restarts=0)(Worker)
        self.spawned = 0
        self.members = [self._spawn(pin=i == 0)[0] for i in range(d["workers"])]
        self.joining = {}               # ready ref -> actor
        self.rendezvous = []
        self.pending = []               # membership records waiting for the next completed step
        self.changes = 0

    def _spawn(self, pin=False):
        actor = self.worker_cls.options(
            name=f"{self.run_id}-worker-{self.spawned}",
            scheduling_strategy=self.here if pin else "DEFAULT").remote(os.getcwd())
        self.spawned += 1
        return actor, actor.ready.remote(self.entry, self.cfg)

    # -- the run ---------------------------------------------------------------------------------
    def run(self, resume, trace, quiet):
        import ray
        from distbp.ray.comm import Rendezvous
        source, generation = resume, 0
        try:
            while True:
                world = len(self.members)
                # on the driver's node with the servers: a node that goes away takes only workers
                rdv = ray.remote(num_cpus=0)(Rendezvous).options(
                    name=f"{self.run_id}-rendezvous-{generation}",
                    scheduling_strategy=self.here).remote(world)
                self.rendezvous.append(rdv)
                ray.get([s.open.remote(generation, world) for s in self.servers])
                refs = {m.fit.remote(self.entry, self.cfg, self.out, self.servers, source, trace,
                                     quiet, group=(r, world, rdv, generation)): m
                        for r, m in enumerate(self.members)}
                summary, cause, seen = self._watch(refs, rdv, generation)
                self.rendezvous.remove(rdv)
                ray.kill(rdv, no_restart=True)      # every member has left it
                if summary is not None:
                    self._flush(time.time())
                    summary["membership_changes"] = self.changes
                    return summary
                pos = ray.get(self.servers[0].position.remote())
                others = ray.get([s.position.remote() for s in self.servers[1:]])
                if any(o["completed"] != pos["completed"] for o in others):
                    raise JobFailed("elastic regroup: the parameter servers disagree on the "
                                    f"step ({[pos['completed']] + [o['completed'] for o in others]})")
                self._admit_ready()
                if len(self.members) < self.low:
                    self._wait_for_members(cause, pos["completed"])
                source = "servers" if pos["loaded"] else resume
                self._record(pos["completed"], world, len(self.members), cause, seen)
                generation += 1
        finally:
            self.kill()

    def _watch(self, refs, rdv, generation):
        """Wait for this generation's fit() calls. -> (rank 0's summary or None, cause, time)."""
        import ray
        ranks = {ref: r for r, ref in enumerate(refs)}
        pending, summary, cause, seen = list(refs), None, None, None
        aborted = False
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            for ref in done:
                rank = ranks[ref]
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    self.members.remove(refs[ref])
                    what = f"worker {rank} died: {_first_line(e)}"
                    cause = what if cause is None else f"{cause}; {what}"
                    if seen is None:
                        seen = time.time()
                        ray.get([s.close.remote(generation) for s in self.servers])
                    if not aborted:
                        rdv.abort.remote()
                        aborted = True
                    continue
                except ray.exceptions.RayTaskError as e:
                    c = getattr(e, "cause", None)
                    if isinstance(c, (UsageError, TrainingStopped)):
                        raise c from None
                    what = f"{type(c).__name__}: {c}" if c is not None else _first_line(e)
                    raise JobFailed(f"ray worker {rank} failed: {what.splitlines()[0]}") from e
                if not result.get("regroup") and rank == 0:
                    summary = result
            self._check_first_step()
            if seen is None and summary is None:
                self._grow()
                if self.joining and self._ready_joiners():
                    seen, cause = time.time(), "capacity: new worker(s) ready"
                    ray.get([s.close.remote(generation) for s in self.servers])
        return summary, cause, seen

    # -- growing ---------------------------------------------------------------------------------
    def _grow(self):
        """Start a new actor when below max_workers and the cluster has a free CPU."""
        import ray
        if len(self.members) + len(self.joining) >= self.high:
            return
        if ray.available_resources().get("CPU", 0) >= 1:
            actor, ready = self._spawn()
            self.joining[ready] = actor

    def _ready_joiners(self):
        import ray
        done, _ = ray.wait(list(self.joining), num_returns=len(self.joining), timeout=0)
        alive = []
        for ref in done:
            try:
                ray.get(ref)
                alive.append(ref)
            except ray.exceptions.RayError:
                ray.kill(self.joining.pop(ref), no_restart=True)
        return alive

    def _admit_ready(self):
        for ref in self._ready_joiners():
            if len(self.members) < self.high:
                self.members.append(self.joining.pop(ref))

    def _wait_for_members(self, cause, step):
        import ray
        deadline = time.monotonic() + self.cfg["dist"]["elastic_wait"]
        while len(self.members) < self.low:
            if time.monotonic() > deadline:
                free = ray.available_resources().get("CPU", 0)
                raise JobFailed(
                    f"elastic run stopped at step {step}: {len(self.members)} worker(s) left "
                    f"({cause}); waited dist.elastic_wait={self.cfg['dist']['elastic_wait']:g}s "
                    f"for {self.low - len(self.members)} more to reach dist.min_workers="
                    f"{self.low}, but the Ray cluster had {free:g} free CPU(s): add a node or "
                    "lower dist.min_workers")
            self._grow()
            self._admit_ready()
            time.sleep(0.1)

    # -- records ---------------------------------------------------------------------------------
    def _record(self, step, old, new, cause, seen):
        self.changes += 1
        logger.warning(f"membership: {old} -> {new} worker(s) at step {step} ({cause}); "
                       f"min {self.low}, max {self.high}")
        self.pending.append({"kind": "membership", "step": step, "old_world": old,
                             "new_world": new, "cause": cause, "seen": seen})

    def _check_first_step(self):
        import ray
        if not self.pending:
            return
        t = ray.get(self.servers[0].position.remote())["first_step_time"]
        if t is not None:
            self._flush(t)

    def _flush(self, t):
        """Write the pending membership records: the change cost from being seen until `t`."""
        path = Path(self.out) / "metrics.jsonl"
        with open(path, "a", encoding="utf-8") as f:
            for rec in self.pending:
                seen = rec.pop("seen")
                rec.update(seconds=round(t - seen, 3), time=round(time.time(), 3))
                f.write(json.dumps(rec) + "\n")
        self.pending = []

    def kill(self):
        import ray
        for actor in self.members + list(self.joining.values()) + self.servers + self.rendezvous:
            ray.kill(actor, no_restart=True)


def _first_line(e):
    text = str(e).strip().splitlines()
    return next((line for line in text if line.strip()), type(e).__name__)[:300]
