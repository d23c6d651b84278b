"""`distbp train --max-restarts K` on local workers: when a worker dies, raises or stops answering,
start the job again from the newest intact checkpoint, up to K times, without a person.

Resuming is exact (the global batch and every random draw depend only on (seed, step, sample), and
the checkpoint holds the parameters, optimizer, schedule and generator), so a run that restarted
ends on the bits of one that never failed; only the steps after the last checkpoint are redone.
Each restart is one log line and a metrics.jsonl record
    {"kind": "restart", "attempt", "step" (resumed from; 0: from the start), "reason", "seconds",
     "old_world", "new_world"}
where seconds is the time from the failed attempt's start to its failure. The metrics of the
steps being redone are dropped, so each step keeps one record.

With --min-workers M a worker that cannot be had is left out: when an attempt fails before its
group has trained one step (a rank killed at startup, say by the out-of-memory killer because the
machine no longer holds W workers), the next attempt runs on one worker fewer, down to M. The
global batch does not depend on the world size, so the run still follows the same trajectory
(within float rounding: the reduction order changes with the world). A failure after the first
step restarts on the same number of workers: a local process can always be started again.
Whether a step was trained is read from the "start" record rank 0 writes after the first step of
each start ({"kind": "start", "step" (resumed from), "world_size"}).

Under mpiexec a dead rank cannot be replaced inside the job: launch/mpirun_supervised.sh runs
`mpiexec ... distbp train --resume` again instead. Ray has dist.max_failures (the same loop).
"""
import json
import time

from distbp.comm import CommError
from distbp.logs import get_logger
from distbp.train import checkpoint as ckpt

logger = get_logger(__name__)


def run_with_restarts(start, out, resume, max_restarts, workers, min_workers=None):
    """start(resume, workers) -> summary, retried on a worker failure (CommError). After
    max_restarts restarts the last failure is raised as it would have been without this."""
    attempt = 0
    while True:
        t0, starts = time.monotonic(), _starts(out)
        try:
            return start(resume, workers)
        except CommError as e:
            if attempt >= max_restarts:
                raise
            attempt += 1
            step = _newest_step(out)
            resume = step is not None
            reason = str(e).splitlines()[0]
            old = workers
            if min_workers is not None and workers > min_workers and _starts(out) == starts:
                workers -= 1        # it failed before training a step: one worker cannot be had
            where = f" on {workers} worker(s), {old - workers} fewer" if workers != old else ""
            logger.warning(f"{reason}; restart {attempt}/{max_restarts} from "
                           + (f"the checkpoint of step {step}" if resume else "the start") + where)
            _keep_metrics_up_to(out, step or 0)
            _append_metrics(out, {"kind": "restart", "attempt": attempt, "step": step or 0,
                                  "reason": reason, "seconds": round(time.monotonic() - t0, 3),
                                  "old_world": old, "new_world": workers, "time": time.time()})


def _starts(out):
    """How many "start" records metrics.jsonl holds (one per start that trained a step)."""
    try:
        text = (out / "metrics.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    return text.count('"kind": "start"')


def _newest_step(out):
    """Step of the newest intact checkpoint in out/checkpoints, or None."""
    if not ckpt.list_checkpoints(out / "checkpoints"):
        return None
    try:
        _, (meta, _, _) = ckpt.latest_intact(out / "checkpoints", lambda line: None)
    except Exception:       # nothing intact: start again from the beginning
        return None
    return int(meta["data_position"]["step"])


def _keep_metrics_up_to(out, step):
    """Drop the records of steps after `step` (they are trained again); restarts stay."""
    path = out / "metrics.jsonl"
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:      # a line cut short by the failure
            continue
        if record.get("kind") in ("restart", "start") or record.get("step", 0) <= step:
            kept.append(line)
    ckpt.atomic_write(path, "".join(k + "\n" for k in kept).encode())


def _append_metrics(out, record):
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
