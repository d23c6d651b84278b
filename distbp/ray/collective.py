"""`distbp run --backend ray`: your script in N Ray actors, its collectives through Ray.

    distbp run --backend ray --nproc-per-node 2 train.py             # local Ray, or RAY_ADDRESS
    ray job submit --working-dir . -- distbp run --backend ray --nproc-per-node 2 train.py

The driver (this process) creates one rendezvous actor and N ScriptActors (one CPU each), finds
which node each landed on (for LOCAL_RANK), and has each run the script with RANK, WORLD_SIZE,
LOCAL_RANK and DISTBP_RAY_GROUP set; the script's stdout and stderr come back to the driver
through the rendezvous actor, each rank's lines whole and none lost at the end. In the script,
dist.init_process_group() builds a RayGroup: every collective hands this rank's array to the
rendezvous actor, which answers when all ranks have arrived; each rank reduces the rows itself, in rank order, so all ranks get the same bits
(distbp/ray/comm.py). No MPI and no shared memory cross the nodes. A rank that stops answering is
named by the rendezvous (who never arrived); a rank that raises or dies ends the job, every actor
is killed, and the driver exits 1 naming it.
"""
import os
import uuid

from distbp.comm.base import CommError
from distbp.ray import comm as ray_comm

NAMESPACE = "distbp"
ENV_GROUP, ENV_NAMESPACE = "DISTBP_RAY_GROUP", "DISTBP_RAY_NAMESPACE"


class Rendezvous(ray_comm.Rendezvous):
    """Also carries the script's output to the driver: Ray's own log streaming is asynchronous,
    and the last lines of a run were lost when the driver ended first."""

    def __init__(self, world):
        super().__init__(world)
        self.lines = []

    def log(self, stream, text):
        self.lines.append((stream, text))

    def drain(self):
        lines, self.lines = self.lines, []
        return lines

    def missing(self, n):
        """Ranks that have not reached collective number n (all of them if none has)."""
        r = self.rounds.get(n)
        return list(range(self.world)) if r is None else [
            q for q, row in enumerate(r["rows"]) if row is None]


class RayGroup(ray_comm.RayCommunicator):
    """The process group of a script run by run_on_ray (reads its rank and group from the env)."""

    @classmethod
    def from_env(cls, timeout=None):
        import ray
        name = os.environ[ENV_GROUP]
        rendezvous = ray.get_actor(name, namespace=os.environ.get(ENV_NAMESPACE, NAMESPACE))
        if timeout is None:
            timeout = float(os.environ.get("DISTBP_COMM_TIMEOUT", 30.0))
        return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), rendezvous, timeout)

    def _gather(self, flat, what):
        import ray
        self._n += 1
        ref = self.rendezvous.gather.remote(self._n, self.rank, (self._current, flat))
        try:
            return self._same_calls(ray.get(ref, timeout=self.timeout))
        except ray.exceptions.GetTimeoutError:
            missing = ray.get(self.rendezvous.missing.remote(self._n), timeout=self.timeout)
            culprit = missing[0] if missing else None
            raise CommError(f"{what} #{self._n} timed out after {self.timeout:g}s on rank "
                            f"{self.rank} waiting for rank(s) {missing} (died or stopped "
                            "answering)", rank=culprit, op=what) from None


class _Forward:
    """A text stream (the actor's sys.stdout or sys.stderr) whose complete lines go to the
    rendezvous; flush() waits until they have arrived."""

    def __init__(self, rendezvous, stream):
        self.rendezvous, self.stream, self.partial, self.sent = rendezvous, stream, "", []

    def write(self, text):
        *lines, self.partial = (self.partial + text).split("\n")
        if lines:
            self.sent.append(self.rendezvous.log.remote(self.stream, "\n".join(lines) + "\n"))
        return len(text)

    def flush(self):
        import ray
        if self.partial:
            self.sent.append(self.rendezvous.log.remote(self.stream, self.partial))
            self.partial = ""
        ray.get(self.sent)
        self.sent = []

    def isatty(self):
        return False


class ScriptActor:
    def node(self):
        import ray
        return ray.get_runtime_context().get_node_id()

    def run(self, env, cwd, script, argv, module, rendezvous):
        import sys
        from distbp.run import run_script, runtime
        os.environ.update(env)
        runtime(int(os.environ.get("OMP_NUM_THREADS") or 1))    # Ray sets it from num_cpus
        if os.path.isdir(cwd):          # the driver's directory, when this node has it
            os.chdir(cwd)
        sys.stdout, sys.stderr = _Forward(rendezvous, "stdout"), _Forward(rendezvous, "stderr")
        try:
            run_script(script, argv, module)      # flushes both streams, also when it raises
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _connect(address, nprocs):
    import ray
    from distbp.ray.launch import SYSTEM_CONFIG, connect
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(address="local", namespace=NAMESPACE, num_cpus=max(os.cpu_count() or 1, nprocs),
                 include_dashboard=False, _system_config=SYSTEM_CONFIG)
        return True
    return connect(address, nprocs)


RESTART_VARS = ("DISTBP_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")  # set by distbp run


def run_on_ray(script, argv, module, nprocs, timeout, address=None):
    """Run the script on `nprocs` actors; return 0, or raise JobFailed naming the failed rank."""
    from distbp.ray.launch import _import_ray
    ray = _import_ray()
    started = _connect(address, nprocs)
    actors = []
    try:
        group = f"script-{uuid.uuid4().hex[:8]}"
        rendezvous = ray.remote(num_cpus=0)(Rendezvous).options(
            name=group, namespace=NAMESPACE).remote(nprocs)
        actor_cls = ray.remote(num_cpus=1, max_restarts=0)(ScriptActor)
        actors = [actor_cls.options(name=f"{group}-rank{r}", namespace=NAMESPACE).remote()
                  for r in range(nprocs)]
        nodes = ray.get([a.node.remote() for a in actors])
        refs = {}
        for r, actor in enumerate(actors):
            env = {"RANK": str(r), "WORLD_SIZE": str(nprocs),
                   "LOCAL_RANK": str(nodes[:r].count(nodes[r])),
                   "LOCAL_WORLD_SIZE": str(nodes.count(nodes[r])),
                   ENV_GROUP: group, ENV_NAMESPACE: NAMESPACE,
                   "DISTBP_COMM_TIMEOUT": str(timeout),
                   **{k: os.environ[k] for k in RESTART_VARS if k in os.environ}}
            refs[actor.run.remote(env, os.getcwd(), script, list(argv), module, rendezvous)] = r
        try:
            _wait(ray, refs, nprocs, rendezvous)
        finally:
            _print(ray.get(rendezvous.drain.remote()))
        return 0
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def _print(lines):
    import sys
    for stream, text in lines:
        (sys.stdout if stream == "stdout" else sys.stderr).write(text)
    sys.stdout.flush()
    sys.stderr.flush()


def _wait(ray, refs, n, rendezvous):
    """Wait for every rank, printing their output; on the first failure, raise JobFailed naming
    the rank to blame."""
    from distbp.errors import JobFailed
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
        _print(ray.get(rendezvous.drain.remote()))
        if not done:
            continue
        rank = refs[done[0]]
        try:
            ray.get(done[0])
        except ray.exceptions.RayActorError as e:
            raise JobFailed(f"rank {rank} of {n} died: {_first_line(e)}") from None
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, CommError) and cause.rank not in (None, rank):
                raise JobFailed(f"rank {cause.rank} of {n} stopped answering: rank {rank} saw: "
                                f"{cause}") from None
            what = f"{type(cause).__name__}: {cause}" if cause is not None else _first_line(e)
            err = JobFailed(f"rank {rank} of {n} failed: {what.splitlines()[0]}")
            err.rank, err.traceback = rank, str(e)
            raise err from None


def _first_line(e):
    text = [line for line in str(e).strip().splitlines() if line.strip()]
    return (text[0] if text else type(e).__name__)[:300]
