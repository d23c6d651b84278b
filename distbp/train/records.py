"""What a run writes about itself, on rank 0: metrics.jsonl (one JSON object per logged step and per
evaluation, each stamped with the wall-clock time and the elapsed training time), the same records
as TensorBoard scalars when `train.tensorboard` is on, and the provenance that goes into
summary.json (versions, BLAS, commit, hosts)."""
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path


class Recorder:
    """Appends records to DIR/metrics.jsonl and, with tensorboard=True, to DIR/tensorboard/.

    Each record gains `time` (Unix seconds, wall clock) and `elapsed` (seconds since training
    started; a resumed run continues from the last record's value)."""

    def __init__(self, out_dir, tensorboard=False, resume=False):
        self.path = Path(out_dir) / "metrics.jsonl"
        self.start = time.monotonic() - (_last_elapsed(self.path) if resume else 0.0)
        self.tb = None
        if tensorboard:
            from distbp.train.tensorboard import SummaryWriter
            self.tb = SummaryWriter(Path(out_dir) / "tensorboard")

    def write(self, record):
        record = {**record, "time": round(time.time(), 3),
                  "elapsed": round(time.monotonic() - self.start, 3)}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            self.tb.add_scalar_dict(scalars(record), record["step"], walltime=record["time"])
        return record


def scalars(record):
    """{tag: value} of the numbers in a train or eval record, TensorBoard-style tags:
    train/loss, train/lr, train/grad_norm, train/samples_per_second, grad_norm/<parameter>,
    eval/accuracy, eval/loss, ..."""
    kind = record.get("kind", "train")
    out = {}
    for key, value in record.items():
        if key in ("kind", "step", "time", "elapsed") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[f"{kind}/{key}"] = float(value)
    for name, stats in (record.get("layers") or {}).items():
        out[f"grad_norm/{name}"] = float(stats["grad_norm"])
    return out


def _last_elapsed(path):
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0.0
    for line in reversed(lines):
        try:
            return float(json.loads(line).get("elapsed", 0.0))
        except ValueError:       # a line cut short by a crash
            continue
    return 0.0


# -- provenance ------------------------------------------------------------------------------------
def provenance(comm, backend):
    """Where and with what a run was made. A collective (the host names of all ranks): call it on
    every rank."""
    hosts = comm.allgather_object(socket.gethostname())
    return {"distbp": _distbp_version(), "git_commit": git_commit(),
            "python": platform.python_version(), "numpy": _numpy_version(), "blas": blas_info(),
            "hosts": hosts, "world_size": comm.size, "backend": backend,
            "platform": platform.platform()}


def _distbp_version():
    import distbp
    return distbp.__version__


def _numpy_version():
    import numpy
    return numpy.__version__


def blas_info():
    """[{library, version, threads}] of the BLAS libraries numpy loaded (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": i.get("internal_api"), "version": i.get("version"),
             "file": os.path.basename(i.get("filepath") or ""),
             "threads": i.get("num_threads"), "architecture": i.get("architecture")}
            for i in threadpool_info() if i.get("user_api") == "blas"]


def git_commit(path=None):
    """The commit of the checkout distbp runs from (with "-dirty" when files differ), or None when
    it is an installed copy or git is missing."""
    where = Path(path or Path(__file__).resolve().parents[2])
    if not (where / ".git").exists():
        return None

    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None

