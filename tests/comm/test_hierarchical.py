"""Hierarchical all-reduce (distbp/comm/hierarchical.py): the shared comm test body on 2 hosts x 2
ranks (host keys faked with DISTBP_HOST under one mpiexec; the real namespace hosts are in
tests/failures/test_netns_links.py), identical bits on every rank, and when it is chosen."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distbp.comm import hierarchical

ROOT = Path(__file__).resolve().parents[2]


def mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


def run_worker(n, env, timeout=240):
    proc = subprocess.run([mpiexec(), "-n", str(n), sys.executable, "-m", "tests.comm.hier_worker"],
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    dec, ok, at = json.JSONDecoder(), [], proc.stdout.find("OK {")
    while at >= 0:                          # ranks' lines may interleave in mpiexec's stdout
        obj, end = dec.raw_decode(proc.stdout, at + 3)
        ok.append(obj)
        at = proc.stdout.find("OK {", end)
    assert proc.returncode == 0 and len(ok) == n, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ok


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_shared_body_on_two_fake_hosts_of_two_ranks():
    ok = run_worker(4, {"DISTBP_HIER_FAKE_HOSTS": "2"})
    assert {(r["local"], r["cross"]) for r in ok} == {(2, 2)}
    assert len({r["digest"] for r in ok}) == 1, "ranks ended with different bits"
    assert all("shm in 2 hosts of 2 ranks, mpi across" in r["transport"] for r in ok)
    counts = {json.dumps(r["summary"]["counts"], sort_keys=True) for r in ok}
    assert len(counts) == 1 and all(v > 0 for v in ok[0]["summary"]["counts"].values())


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_one_rank_per_host_or_one_host_stays_flat():
    # auto wraps only for >= 2 hosts with >= 2 ranks each: 2 fake hosts of 1 rank stay flat
    run_worker(2, {"DISTBP_HIER_FAKE_HOSTS": "2", "DISTBP_HIER_EXPECT": "flat",
                   "DISTBP_HIER_BODY": "0"})
    run_worker(2, {"DISTBP_HIER_EXPECT": "flat", "DISTBP_HIER_BODY": "0"})       # one host
    run_worker(4, {"DISTBP_HIER_FAKE_HOSTS": "2", "DISTBP_HIERARCHICAL": "0",   # overridden
                   "DISTBP_HIER_EXPECT": "flat", "DISTBP_HIER_BODY": "0"})


def test_mode_is_checked_and_other_backends_stay_flat():
    import distbp.comm
    comm = distbp.comm.init("single")
    try:
        with pytest.raises(ValueError, match="DISTBP_HIERARCHICAL='yes'"):
            hierarchical.wrap(comm, mode="yes")
        assert hierarchical.wrap(comm, mode="1") is None
    finally:
        comm.close()
