"""Shared pieces of the failure tests: a tiny config, runs of the real `distbp` command in a
subprocess tagged with a unique marker, and /proc scans that find every process of a run by it."""
import glob
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FAULTY = Path(__file__).with_name("faulty.py")
MARKER_VAR = "DISTBP_TEST_RUN"

# A small MLP on the synthetic blobs: a step costs well under a millisecond, so runs are short.
TINY = {
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "synthetic", "path": "data/synthetic"},
    "train": {"steps": 100000, "global_batch_size": 24, "seed": 1, "log_every": 5,
              "eval_every": 0},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "schedule": "constant"},
    "dist": {"workers": 3, "timeout": 4.0},
    "checkpoint": {"every_steps": 0},
}


def mpiexec():
    path = Path(sys.executable).parent / "mpiexec"
    return str(path) if path.exists() else shutil.which("mpiexec")


def write_config(directory, name="tiny.yaml", **sections):
    """TINY with some sections' keys replaced, e.g. write_config(d, train={"steps": 40})."""
    cfg = {k: dict(v) for k, v in TINY.items()}
    for section, values in sections.items():
        cfg[section].update(values)
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(cfg))
    return path


_counter = itertools.count()


class Run:
    """One `distbp train` job started in the background; every process it starts (CLI, forkserver,
    workers, mpiexec, hydra proxies, ranks) inherits the marker, which is how we find them."""

    def __init__(self, cwd, train_args, mpi_ranks=0, fault=None, env=None, launcher=(), wrap=()):
        self.cwd = Path(cwd)
        self.marker = f"{os.getpid()}-{next(_counter)}-{time.monotonic_ns()}"
        env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT), MARKER_VAR: self.marker}
        if fault:
            env["DISTBP_FAULT"] = fault
        cmd = [sys.executable, str(FAULTY) if fault else "-m", *([] if fault else ["distbp.cli"]),
               "train", *map(str, train_args), "--quiet"]
        if mpi_ranks:
            cmd = [mpiexec(), *launcher, "-n", str(mpi_ranks), *cmd]
        cmd = [*wrap, *cmd]                       # e.g. ip netns exec HOST
        self.started = time.monotonic()
        self.mpich_before = set(glob.glob("/dev/shm/mpich_shm_*")) if mpi_ranks else None
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.stdout = self.stderr = ""

    def processes(self):
        """{pid: environ dict} of every live process carrying this run's marker."""
        found, tag = {}, f"{MARKER_VAR}={self.marker}".encode()
        for d in glob.glob("/proc/[0-9]*"):
            try:
                raw = Path(d, "environ").read_bytes().split(b"\0")
                state = Path(d, "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if tag in raw and state != "Z":
                found[int(d[6:])] = dict(e.decode(errors="replace").split("=", 1)
                                         for e in raw if b"=" in e)
        return found

    def local_workers(self):
        """Worker pids of a local run in rank order: the processes mapping the run's segment
        (named distbp_<launcher pid>_...), minus the launcher and its own children: the workers are
        the forkserver's children, while a child the launcher forks (the forkserver itself, before
        its exec) shows the launcher's mappings for a moment. The launcher starts them in order."""
        seg = f"/dev/shm/distbp_{self.proc.pid}_"
        pids = []
        for pid in self.processes():
            try:
                if (pid != self.proc.pid and int(stat_fields(pid)[1]) != self.proc.pid
                        and seg in Path(f"/proc/{pid}/maps").read_text()):
                    pids.append(pid)
            except OSError:
                pass
        return sorted(pids, key=lambda p: (start_time(p), p))

    def mpi_ranks(self):
        """{rank: pid} of an mpiexec run, from the PMI_RANK hydra gives each rank."""
        return {int(env["PMI_RANK"]): pid for pid, env in self.processes().items()
                if "PMI_RANK" in env}

    def segments(self):
        return glob.glob(f"/dev/shm/distbp_{self.proc.pid}_*")

    def wait_for_step(self, step, deadline=120):
        """Block until rank 0 has logged `step` (metrics.jsonl) or the job has ended."""
        metrics = self.out / "metrics.jsonl"
        end = time.monotonic() + deadline
        while time.monotonic() < end and self.proc.poll() is None:
            if metrics.exists() and any(f'"step": {step},' in line
                                        for line in metrics.read_text().splitlines()):
                return
            time.sleep(0.05)
        raise AssertionError(f"run did not reach step {step}: rc={self.proc.poll()}\n"
                             f"{self.finish(1)[1][-3000:]}")

    @property
    def out(self):
        args = self.proc.args
        return self.cwd / args[args.index("--out") + 1]

    def finish(self, timeout):
        """Wait for the job; on timeout kill what is left of it (and say so). -> (rc, stderr)."""
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            self.stdout, self.stderr = self.proc.communicate()
            return None, self.stderr
        return self.proc.returncode, self.stderr

    def remove_mpich_leftovers(self):
        """MPICH unlinks its shared-memory segment in MPI_Finalize, which killed and aborted ranks
        never reach: remove the segments this run created that no process maps any more."""
        if self.mpich_before is None:
            return
        mapped = set()
        for maps in glob.glob("/proc/[0-9]*/maps"):
            try:
                mapped |= {line.split()[-1] for line in open(maps) if "/dev/shm/mpich_shm_" in line}
            except OSError:
                pass
        for path in set(glob.glob("/dev/shm/mpich_shm_*")) - self.mpich_before - mapped:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def kill_all(self):
        """Finalizer: SIGKILL every process of this run (found by marker, so nothing else)."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()


def stat_fields(pid):
    """/proc/<pid>/stat after the command name: [0] state, [1] parent pid, ... [19] start time."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def start_time(pid):
    return int(stat_fields(pid)[19])


def wait_gone(run, seconds=5.0):
    """{pid: command line} of the run's processes still alive `seconds` after the job returned
    (should be none)."""
    end = time.monotonic() + seconds
    while run.processes() and time.monotonic() < end:
        time.sleep(0.1)
    left = {}
    for pid in run.processes():
        try:
            left[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            pass
    return left
