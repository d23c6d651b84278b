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


def mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


@pytest.mark.parametrize("transport", ["shm", "mpi"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_body_under_mpiexec(n, transport):
    exe = mpiexec()
    assert exe, "mpiexec not found next to python or on PATH (pip install mpich)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "DISTBP_MPI_TRANSPORT": transport}
    proc = subprocess.run([exe, "-n", str(n), sys.executable, "-m", "tests.comm.mpi_worker"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summaries = [json.loads(line[3:]) for line in proc.stdout.splitlines() if line.startswith("OK ")]
    assert sorted(s["rank"] for s in summaries) == list(range(n)), out
    assert all(s["size"] == n and s["backend"] == "mpi" for s in summaries)
    assert all(s["transport"] == (transport if n > 1 else "mpi") for s in summaries), out
    assert all(s["counts"] == summaries[0]["counts"] and s["native"] > 0 for s in summaries)
    if n > 1:
        assert all(s["mismatch"] == 1 for s in summaries)
        # every rank but the silent last one timed out naming a peer
        assert proc.stdout.count("TIMEOUT-OK") == n - 1, out
