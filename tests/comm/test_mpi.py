"""The shared multi-rank body under `mpiexec -n N` (N = 1..4), one mpiexec run per N, with the ring
over shared memory (the default when all ranks share a node) and over MPI messages."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def worker_env(transport=None):
    """The ranks' environment: the repository importable, DISTBP_MPI_TRANSPORT as given (None: the
    backend's default, even if the caller's environment sets one)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("DISTBP_MPI_TRANSPORT", None)
    if transport:
        env["DISTBP_MPI_TRANSPORT"] = transport
    return env


def mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


@pytest.mark.parametrize("transport", ["shm", "mpi"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_body_under_mpiexec(n, transport):
    exe = mpiexec()
    assert exe, "mpiexec not found next to python or on PATH (pip install mpich)"
    env = worker_env(transport)
    proc = subprocess.run([exe, "-n", str(n), sys.executable, "-m", "tests.comm.mpi_worker"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    byes = sorted(int(line[4:]) for line in proc.stdout.splitlines() if line.startswith("BYE "))
    assert byes == list(range(n)), out                  # every rank finished every check
    # ... and the job ended cleanly, or hydra SIGKILLed a rank that had said BYE and was only exiting
    # (it kills the others as soon as one exits without MPI_Finalize; see mpi_worker.finish)
    assert proc.returncode == 0 or (proc.returncode == 9 and "Killed (signal 9)" in out), out
    summaries = [json.loads(line[3:]) for line in proc.stdout.splitlines() if line.startswith("OK ")]
    assert sorted(s["rank"] for s in summaries) == list(range(n)), out
    assert all(s["size"] == n and s["backend"] == "mpi" for s in summaries)
    assert all(s["transport"] == (transport if n > 1 else "mpi") for s in summaries), out
    assert all(s["counts"] == summaries[0]["counts"] and s["native"] > 0 for s in summaries)
    if n > 1:
        assert all(s["mismatch"] == 1 for s in summaries)
        # every rank but the silent last one timed out naming a peer
        assert proc.stdout.count("TIMEOUT-OK") == n - 1, out


PROBE = r"""
import os
import distbp.comm
comm = distbp.comm.init("mpi")
t = comm.transport
line = f"RANK {comm.rank} {sorted(os.sched_getaffinity(0))} {t.nslots} {t.spin} {t.spin_seconds}\n"
os.write(1, line.encode())          # one write: the ranks' lines never interleave
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="binding 2 ranks needs 2 cores")
@pytest.mark.parametrize("bind", [False, True])
def test_ranks_bound_to_their_own_cores_are_not_oversubscribed(bind):
    """Bound one core each (mpiexec -bind-to core; Open MPI's default for -n 2), 2 ranks on 2 cores
    still have a core each: the shared-memory transport must not switch to its oversubscribed
    settings because each rank sees a single core."""
    from distbp.comm import shm as local
    env = worker_env()
    cmd = [mpiexec(), "-n", "2"] + (["-bind-to", "core"] if bind else []) + [sys.executable, "-c", PROBE]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split(" ", 2) for line in proc.stdout.splitlines() if line.startswith("RANK")]
    assert len(rows) == 2, proc.stdout
    if bind:
        assert rows[0][2] != rows[1][2], proc.stdout      # really bound to different cores
    for _, _, rest in rows:
        nslots, spin, seconds = rest.rsplit(" ", 3)[1:]
        assert (int(nslots), int(spin), float(seconds)) == (local.NSLOTS, local.SPIN_POLLS,
                                                            local.SPIN_MS / 1e3), proc.stdout


CLOSE_PROBE = r"""
import os
import distbp.comm
from distbp.comm.mpi import MPICommunicator
MPICommunicator().close()                   # MPI's own first-use allocations happen here
before = len(os.listdir("/proc/self/fd"))
for _ in range(5):
    c = MPICommunicator()
    assert c.transport_name == "shm", c.transport_name
    c.close()
os.write(1, f"FDS {before} {len(os.listdir('/proc/self/fd'))}\n".encode())
"""


def test_closing_an_mpi_communicator_releases_its_shared_memory_transport():
    env = worker_env()
    proc = subprocess.run([mpiexec(), "-n", "2", sys.executable, "-c", CLOSE_PROBE], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("FDS")]
    assert len(rows) == 2 and all(a == b for a, b in rows), proc.stdout   # no bells left open


def test_a_bad_transport_in_the_environment_is_one_line_naming_the_variable(tmp_path):
    env = worker_env("bogus")
    cmd = [mpiexec(), "-n", "2", sys.executable, "-m", "distbp.cli", "train", "--backend", "mpi",
           "--config", str(ROOT / "configs" / "mnist1d_mlp.yaml"), "--out", str(tmp_path / "run"),
           "--set", "train.steps=2", "--set", f"data.path={tmp_path / 'none'}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and all(line == "distbp train: error: DISTBP_MPI_TRANSPORT='bogus': choose one of "
                         "auto, shm, mpi" for line in lines), proc.stderr
    assert not (tmp_path / "run").exists()
