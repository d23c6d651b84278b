"""The same training under `mpiexec -n N ... --backend mpi` ends at the local backend's parameters."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.parallel.helpers import CONFIG, max_diff, params, train


def mpiexec():
    path = Path(sys.executable).parent / "mpiexec"
    return str(path) if path.exists() else shutil.which("mpiexec")


pytestmark = pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")


def run_mpi(n, out, sets=(), extra=()):
    cmd = [mpiexec(), "-n", str(n), sys.executable, "-m", "distbp.cli", "train",
           "--config", str(CONFIG), "--backend", "mpi", "--out", str(out), "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))


@pytest.mark.parametrize("n", [2, 4])
def test_mpi_matches_local(in_tmp, n):
    ref = params(train(in_tmp, "local1", [], workers=1))
    proc = run_mpi(n, in_tmp / f"mpi{n}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert max_diff(ref, params(in_tmp / f"mpi{n}")) < 1e-12
    assert f"on {n} worker(s)" in proc.stdout


def test_workers_disagreeing_with_mpi_world(in_tmp):
    train(in_tmp, "prep", ["train.steps=1"])                 # data prepared once, outside MPI
    proc = run_mpi(2, in_tmp / "bad", extra=["--workers", "3"])
    assert proc.returncode != 0
    assert "--workers 3 disagrees with the MPI world of 2 ranks" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (in_tmp / "bad").exists()
