"""A worker that raises, is SIGKILLed or hangs (SIGSTOP) mid-training, under the local launcher and
under mpiexec: the job ends within the timeout, exits non-zero, names the failed rank and what it
was doing, and leaves no process or shared-memory segment behind.

The runs are real `distbp train` jobs (3 workers, tiny MLP, dist.timeout=4 s, 100000 steps so only
a failure can end them). Rank 1 fails after step 10 has been logged.
"""
import glob
import os
import re
import signal
import time

import pytest

from tests.failures.helpers import TINY, mpiexec, wait_gone, write_config

TIMEOUT = TINY["dist"]["timeout"]
# Survivors notice within `timeout`; the local launcher kills stragglers `timeout` after the first
# failure; the rest is process start-up/teardown on two busy cores.
BOUND = 2 * TIMEOUT + 15
COLLECTIVES = ("allreduce", "reduce_scatter", "allgather_into", "broadcast", "allgather", "barrier")
needs_mpi = pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")


def start(runs, work, backend, fault):
    cfg = write_config(work)
    args = ["--config", cfg, "--out", "run", "--force", "--backend", backend]
    if backend == "local":
        return runs(work, args + ["--workers", "3"], fault=fault)
    return runs(work, args, mpi_ranks=3, fault=fault)


def inject(run, backend, how):
    """SIGKILL / SIGSTOP rank 1 once step 10 is logged (a raise is injected by faulty.py at step
    10). Returns the victim's pid and the time the fault happened."""
    if how == "raise":
        try:
            run.wait_for_step(5)
        except AssertionError:      # the fault at step 10 may end the job before step 5 is seen
            pass
        return None, time.monotonic()
    run.wait_for_step(10)
    pid = run.local_workers()[1] if backend == "local" else run.mpi_ranks()[1]
    os.kill(pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    return pid, time.monotonic()


def error_lines(text):
    return [line for line in text.splitlines() if "rank 1" in line]


def check_ended(run, t_fault):
    rc, err = run.finish(BOUND + 30)
    elapsed = time.monotonic() - t_fault
    assert rc is not None, f"job still running {BOUND + 30:.0f}s after the fault (a hang):\n{err[-3000:]}"
    assert rc != 0, err[-3000:]
    assert elapsed < BOUND, f"job took {elapsed:.1f}s after the fault (bound {BOUND}s)"
    assert wait_gone(run) == {}, "processes left behind"
    return err


# -- local launcher -----------------------------------------------------------------------------
def test_local_rank_raises(runs, work):
    run = start(runs, work, "local", "raise:1:10")
    _, t = inject(run, "local", "raise")
    err = check_ended(run, t)
    assert run.segments() == []
    assert any(re.search(r"rank 1 of 3 failed: RuntimeError: injected fault at step 10", line)
               for line in err.splitlines()), err[-3000:]
    assert "in train_step" in err                 # what it was doing: its traceback


@pytest.fixture(scope="module")
def local_killed(tmp_path_factory, synthetic):
    """One local run whose rank 1 is SIGKILLed; two tests read its outcome."""
    from tests.failures.helpers import Run
    work = tmp_path_factory.mktemp("killed")
    (work / "data").symlink_to(synthetic)
    run = Run(work, ["--config", write_config(work), "--out", "run", "--force", "--backend",
                     "local", "--workers", "3"])
    try:
        _, t = inject(run, "local", "kill")
        err = check_ended(run, t)
    finally:
        run.kill_all()
    return run, err


def test_local_rank_killed(local_killed):
    run, err = local_killed
    assert run.segments() == []
    assert any("rank 1 of 3 was killed by SIGKILL" in line for line in err.splitlines()), err[-3000:]


def test_local_rank_killed_names_the_operation(local_killed):
    _, err = local_killed
    line = next(line for line in err.splitlines() if "rank 1 of 3 was killed" in line)
    assert any(op in line for op in COLLECTIVES), line


def test_local_rank_hangs(runs, work):
    run = start(runs, work, "local", None)
    pid, t = inject(run, "local", "stop")
    err = check_ended(run, t)                      # the launcher SIGKILLs the stopped rank
    assert run.segments() == []
    # the first rank the message names is the stopped one (not a neighbour that timed out on it)
    line = next(line for line in err.splitlines() if re.search(r"rank \d of 3", line))
    assert re.search(r"rank \d of 3", line).group() == "rank 1 of 3", line
    assert any(op in line for op in COLLECTIVES), line


# -- mpiexec ------------------------------------------------------------------------------------
@needs_mpi
def test_mpi_rank_raises(runs, work):
    run = start(runs, work, "mpi", "raise:1:10")
    _, t = inject(run, "mpi", "raise")
    err = check_ended(run, t)
    assert any(re.search(r"rank 1\b.*RuntimeError: injected fault", line)
               for line in err.splitlines()), err[-3000:]


@needs_mpi
def test_mpi_rank_killed(runs, work):
    """Hydra sees the death at once and kills the other ranks; it names a PID and the signal (the
    PID of the first rank whose end it processes: the killed one, or one it killed in turn)."""
    shm_before = set(glob.glob("/dev/shm/mpich_shm_*"))
    run = start(runs, work, "mpi", None)
    run.wait_for_step(5)
    pids = set(run.mpi_ranks().values())
    pid, t = inject(run, "mpi", "kill")
    try:
        check_ended(run, t)
        out = run.stdout + run.stderr
        assert pid in pids and "signal 9" in out, out[-3000:]
        assert any(f"PID {p} " in out for p in pids), out[-3000:]
    finally:   # MPICH leaves its shared-memory segment behind when its ranks are killed
        for seg in set(glob.glob("/dev/shm/mpich_shm_*")) - shm_before:
            os.unlink(seg)


@needs_mpi
def test_mpi_rank_hangs(runs, work):
    run = start(runs, work, "mpi", None)
    pid, t = inject(run, "mpi", "stop")
    rc, err = run.finish(2 * TIMEOUT + 10)
    assert rc is not None, f"job hung after the survivors' CommError:\n{err[-2000:]}"
    assert rc != 0 and wait_gone(run) == {}
    assert any(re.search(r"rank 1 ", line) and "timed out" in line for line in err.splitlines())


# -- heartbeats: a stopped rank is named long before dist.timeout ---------------------------------
LONG_TIMEOUT = 60.0


def start_long(runs, work, backend):
    """A run whose collective timeout (60 s) is far longer than the heartbeat's (5 s, the default)."""
    cfg = write_config(work, dist={"workers": 3, "timeout": LONG_TIMEOUT})
    args = ["--config", cfg, "--out", "run", "--force", "--backend", backend]
    if backend == "local":
        return runs(work, args + ["--workers", "3"])
    return runs(work, args, mpi_ranks=3)


def check_stopped_rank_named(run, t_fault, line_pattern):
    rc, err = run.finish(LONG_TIMEOUT)
    elapsed = time.monotonic() - t_fault
    assert rc is not None and rc != 0, err[-3000:]
    assert elapsed < LONG_TIMEOUT / 2, f"{elapsed:.1f}s after SIGSTOP: not the heartbeat but the timeout"
    assert wait_gone(run) == {}, "processes left behind"
    assert any(re.search(line_pattern, line) for line in err.splitlines()), err[-3000:]
    return elapsed


def test_local_rank_stopped_is_named_by_its_heartbeat(runs, work):
    run = start_long(runs, work, "local")
    _, t = inject(run, "local", "stop")
    check_stopped_rank_named(run, t, r"rank 1 of 3 stopped answering during \w+: no heartbeat for 5 s")
    assert run.segments() == []


@needs_mpi
def test_mpi_rank_stopped_is_named_by_its_heartbeat(runs, work):
    """No launcher of ours watches mpiexec's ranks: the survivors' heartbeat threads notice, name
    rank 1 in their one-line error and abort the job."""
    run = start_long(runs, work, "mpi")
    _, t = inject(run, "mpi", "stop")
    check_stopped_rank_named(run, t, r"rank [02] of 3 failed: CommError: \w+ on rank [02]: rank 1 "
                                     r"stopped answering: no heartbeat for [5-9]\.\d s")


def test_local_launcher_killed_takes_its_workers(runs, work):
    """SIGKILL of the launcher itself (an OOM killer, a scheduler): the workers, whose parent is
    the forkserver, notice the launcher is gone and end; shared memory is reclaimed."""
    run = start(runs, work, "local", None)
    run.wait_for_step(5)
    segments = run.segments()
    assert segments
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(10)
    assert wait_gone(run, seconds=15) == {}, "workers outlived their launcher"
    deadline = time.monotonic() + 15
    while any(os.path.exists(s) for s in segments) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(os.path.exists(s) for s in segments)
