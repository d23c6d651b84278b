"""Restarts without a person (distbp/train/restart.py, launch/mpirun_supervised.sh): workers
SIGKILLed at random moments of one run, which finishes by itself on the bits of the run that was
never interrupted; each restart is a metrics.jsonl record; bad values are one-line usage errors."""
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.failures.helpers import FAULTY, MARKER_VAR, ROOT, mpiexec, wait_gone, write_config

SECTIONS = dict(train={"steps": 300, "dtype": "float64", "log_every": 5},
                checkpoint={"every_steps": 10}, dist={"workers": 2, "timeout": 4.0})


def params(out):
    with np.load(out / "model.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def records(out, kind):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == kind]


def mpi_ranks(marker):
    """{rank: pid} of the MPI ranks whose environment carries the marker."""
    tag, found = f"{MARKER_VAR}={marker}".encode(), {}
    for d in glob.glob("/proc/[0-9]*"):
        try:
            env = Path(d, "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if tag in env:
            rank = [e for e in env if e.startswith(b"PMI_RANK=")]
            if rank:
                found[int(rank[0][9:])] = int(d[6:])
    return found


def wait_until(condition, what, run, deadline=60):
    end = time.monotonic() + deadline
    while time.monotonic() < end and run.proc.poll() is None:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_random_kills_end_on_the_uninterrupted_bits(runs, work):
    cfg = write_config(work, **SECTIONS)
    straight = runs(work, ["--config", cfg, "--out", "straight", "--force"])
    assert straight.finish(120)[0] == 0, straight.stderr[-2000:]

    chaos = runs(work, ["--config", cfg, "--out", "chaos", "--force", "--max-restarts", "5"])
    rng = random.Random(2026)
    kills = 0
    for _ in range(3):
        step = rng.randrange(15, 200, 5)
        reached = wait_until(lambda: (chaos.out / "metrics.jsonl").exists() and any(
            f'"step": {s},' in line for s in range(step, 301, 5)
            for line in (chaos.out / "metrics.jsonl").read_text().splitlines()), "step", chaos)
        workers = chaos.local_workers()
        if not reached or not workers or chaos.proc.poll() is not None:
            break
        time.sleep(rng.uniform(0, 0.05))                   # a random moment inside a step
        try:
            os.kill(rng.choice(workers), signal.SIGKILL)
        except ProcessLookupError:
            continue
        kills += 1
        assert wait_until(lambda: len(records(chaos.out, "restart")) == kills, "restart", chaos), \
            chaos.finish(5)[1][-3000:]
    rc, err = chaos.finish(180)
    assert rc == 0, err[-3000:]
    assert kills >= 1, "no kill landed while the run was going"
    restarts = records(chaos.out, "restart")
    assert [r["attempt"] for r in restarts] == list(range(1, kills + 1))
    assert all("rank" in r["reason"] and r["step"] % 10 == 0 for r in restarts), restarts
    assert chaos.stdout.count("restart ") == kills, chaos.stdout[-2000:]   # the CLI logs on stdout
    a, b = params(straight.out), params(chaos.out)
    assert all(np.array_equal(a[k], b[k]) for k in a), "a restarted run left the trajectory"
    steps = [r["step"] for r in map(json.loads, (chaos.out / "metrics.jsonl").read_text().splitlines())
             if r.get("kind") == "train"]
    assert steps == sorted(set(steps)), "redone steps logged twice"
    assert wait_gone(chaos) == {}


def test_out_of_restarts_fails_as_before(runs, work):
    cfg = write_config(work, **SECTIONS)
    run = runs(work, ["--config", cfg, "--out", "once", "--force", "--max-restarts", "0"])
    assert wait_until(lambda: bool(run.local_workers()), "workers", run)
    os.kill(run.local_workers()[-1], signal.SIGKILL)
    rc, err = run.finish(60)
    assert rc == 1 and ("was killed" in err or "SIGKILL" in err), err[-2000:]
    assert wait_gone(run) == {}


def test_a_worker_that_cannot_be_had_is_left_out(runs, work):
    """--min-workers 2 on 3 workers, on a "machine that holds 2": rank 2 is SIGKILLed at its first
    step whenever the world has more than 2 workers. The first start fails before training a step,
    the restart runs on 2 workers, and the run ends at the uninterrupted 3-worker run's parameters
    (float64; the global batch does not depend on the world, only the reduction order does)."""
    sections = dict(train={"steps": 60, "dtype": "float64", "log_every": 5},
                    checkpoint={"every_steps": 10}, dist={"workers": 3, "timeout": 4.0})
    cfg = write_config(work, **sections)
    straight = runs(work, ["--config", cfg, "--out", "straight", "--force"])
    assert straight.finish(120)[0] == 0, straight.stderr[-2000:]
    run = runs(work, ["--config", cfg, "--out", "shrunk", "--force", "--max-restarts", "2",
                      "--min-workers", "2"], fault="crowded:2:2")
    rc, err = run.finish(120)
    assert rc == 0, err[-2000:]
    assert "restart 1/2 from the start on 2 worker(s), 1 fewer" in run.stdout, run.stdout[-2000:]
    restarts = records(work / "shrunk", "restart")
    assert [(r["old_world"], r["new_world"], r["step"]) for r in restarts] == [(3, 2, 0)]
    assert [(r["step"], r["world_size"]) for r in records(work / "shrunk", "start")] == [(0, 2)]
    assert [r["step"] for r in records(work / "shrunk", "train")] == list(range(5, 61, 5))
    a, b = params(work / "straight"), params(work / "shrunk")
    assert max(float(np.max(np.abs(a[k] - b[k]))) for k in a) < 1e-12
    # at --min-workers 3 none can be left out: each start fails the same way, then it ends
    run = runs(work, ["--config", cfg, "--out", "floor", "--force", "--max-restarts", "1",
                      "--min-workers", "3"], fault="crowded:2:2")
    rc, err = run.finish(120)
    assert rc == 1 and "rank 2 of 3" in err, err[-2000:]
    assert "restart 1/1 from the start\n" in run.stdout, run.stdout[-2000:]
    assert [r["new_world"] for r in records(work / "floor", "restart")] == [3]


@pytest.mark.parametrize("argv, says", [
    (["--max-restarts", "-1"], "--max-restarts must be >= 0"),
    (["--min-workers", "0", "--max-restarts", "1"], "--min-workers must be >= 1"),
    (["--min-workers", "3", "--max-restarts", "1"], "--min-workers 3 is more than the 2 worker(s)"),
    (["--min-workers", "1"], "add --max-restarts K"),
    (["--min-workers", "1", "--backend", "mpi"], "launch/mpirun_supervised.sh"),
    (["--max-restarts", "2", "--backend", "mpi"], "launch/mpirun_supervised.sh")])
def test_bad_values_are_usage_errors(work, argv, says):
    cfg = write_config(work, **SECTIONS)
    p = subprocess.run([sys.executable, "-m", "distbp.cli", "train", "--config", str(cfg),
                        "--out", "bad", *argv], cwd=work, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and says in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert not (work / "bad").exists()


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_mpiexec_job_relaunched_by_the_supervisor(work):
    """Rank 1 is SIGKILLed once mid-run: the MPI job ends, launch/mpirun_supervised.sh starts it
    again with --resume, and the run ends on the uninterrupted run's bits."""
    cfg = write_config(work, **SECTIONS)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [mpiexec(), "-n", "2", sys.executable, "-m", "distbp.cli", "train", "--config",
            str(cfg), "--backend", "mpi", "--quiet", "--force"]
    straight = subprocess.run([*base, "--out", "straight"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=180)
    assert straight.returncode == 0, straight.stderr[-2000:]
    marker = f"supervised-{os.getpid()}-{time.monotonic_ns()}"
    sup = subprocess.Popen(["sh", str(ROOT / "launch" / "mpirun_supervised.sh"), "2", *base,
                            "--out", "sup"], cwd=work, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env={**env, MARKER_VAR: marker})
    metrics = work / "sup" / "metrics.jsonl"
    end = time.monotonic() + 120
    while time.monotonic() < end and not (metrics.exists() and '"step": 60,' in metrics.read_text()):
        time.sleep(0.05)
    ranks = mpi_ranks(marker)
    assert 1 in ranks, (ranks, sup.poll())
    os.kill(ranks[1], signal.SIGKILL)
    out, err = sup.communicate(timeout=240)
    assert sup.returncode == 0, err[-3000:]
    assert "restart 1/2 with --resume" in err, err[-3000:]
    a, b = params(work / "straight"), params(work / "sup")
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_mpiexec_supervisor_leaves_out_a_rank_that_cannot_be_had(runs, work):
    """launch/mpirun_supervised.sh --min-workers 2 around `mpiexec -n 3`: rank 2 is SIGKILLed at
    its first step whenever there are more than 2 ranks; the job fails before a step, is started
    again on 2 ranks, and ends at the 3-worker uninterrupted run's parameters (float64)."""
    cfg = write_config(work, train={"steps": 40, "dtype": "float64", "log_every": 5},
                       checkpoint={"every_steps": 10}, dist={"workers": 3, "timeout": 4.0})
    straight = runs(work, ["--config", cfg, "--out", "straight", "--force"])
    assert straight.finish(120)[0] == 0, straight.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISTBP_FAULT="crowded:2:2")
    sup = subprocess.run(["sh", str(ROOT / "launch" / "mpirun_supervised.sh"), "--min-workers",
                          "2", "2", mpiexec(), "-n", "3", sys.executable, str(FAULTY), "train",
                          "--config", str(cfg), "--backend", "mpi", "--quiet", "--out", "sup",
                          "--force"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=240)
    assert sup.returncode == 0, sup.stderr[-3000:]
    assert "restart 1/2 from the start on 2 ranks, 1 fewer" in sup.stderr, sup.stderr[-3000:]
    assert [(r["step"], r["world_size"]) for r in records(work / "sup", "start")] == [(0, 2)]
    a, b = params(work / "straight"), params(work / "sup")
    assert max(float(np.max(np.abs(a[k] - b[k]))) for k in a) < 1e-12


@pytest.mark.parametrize("args, says", [
    (["--min-workers", "0", "1", "mpiexec", "-n", "2", "x", "--out", "o"], "must be a number >= 1"),
    (["--min-workers", "3", "1", "mpiexec", "-n", "2", "x", "--out", "o"],
     "--min-workers 3 is more than the 2 ranks"),
    (["--min-workers", "1", "1", "mpiexec", "x", "--out", "o"], "needs the rank count as -n N"),
    (["1", "mpiexec", "-n", "2", "x"], "needs --out DIR")])
def test_supervisor_bad_arguments_are_one_line(tmp_path, args, says):
    p = subprocess.run(["sh", str(ROOT / "launch" / "mpirun_supervised.sh"), *args], cwd=tmp_path,
                       capture_output=True, text=True)
    assert p.returncode == 2 and says in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert list(tmp_path.iterdir()) == []
