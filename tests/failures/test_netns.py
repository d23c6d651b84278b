"""Multi-host for real, on one machine: three hosts made of Linux network namespaces on a private
bridge (launch/netns_hosts.sh; 10.213.0.0/24 exists only inside them). mpiexec runs on host 0 and
starts one rank on host 1 and one on host 2 through the script (hydra's ssh launcher pointed at
`ip netns exec`); MPIR_CVAR_NOLOCAL=1 and UCX_TLS=tcp force the traffic over TCP on the veths.

Needs root and iproute2; skipped otherwise (CI runs as root).
"""
import os
import shutil
import subprocess
import sys
import re
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.failures.helpers import ROOT, TINY, Run, mpiexec, wait_gone, write_config

SCRIPT = ROOT / "launch" / "netns_hosts.sh"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 (ip) not installed"),
    pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)"),
]
NET = "10.213.0"


@pytest.fixture(scope="module")
def hosts():
    prefix = f"dbp{uuid.uuid4().hex[:6]}"         # unique names: parallel runs never collide
    env = dict(os.environ, DISTBP_NETNS_PREFIX=prefix, DISTBP_NETNS_NET=NET)
    up = subprocess.run(["sh", SCRIPT, "up", "3"], env=env, capture_output=True, text=True)
    try:
        if up.returncode:
            pytest.skip(f"cannot create network namespaces: {up.stderr.strip()}")
        yield env
    finally:
        subprocess.run(["sh", SCRIPT, "down", "3"], env=env, capture_output=True)


def cut(hosts, k):
    """Take host k's link down for the rest of this test (the hosts fixture is shared)."""
    subprocess.run(["sh", SCRIPT, "cut", str(k)], env=hosts, check=True)
    _cut.append(k)


_cut = []


@pytest.fixture(autouse=True)
def heal(request):
    yield
    while _cut:
        env = request.getfixturevalue("hosts")
        subprocess.run(["sh", SCRIPT, "heal", str(_cut.pop())], env=env, check=True)


def start_multihost(runs, work, hosts, cfg, out):
    """mpiexec on host 0, rank 0 on host 1, rank 1 on host 2."""
    launcher = ["-launcher", "ssh", "-launcher-exec", str(SCRIPT), "-localhost", f"{NET}.1",
                "-hosts", f"{NET}.2,{NET}.3", "-genvall"]
    h0 = hosts["DISTBP_NETNS_PREFIX"] + "_h0"
    return runs(work, ["--config", cfg, "--out", out, "--force", "--backend", "mpi"], mpi_ranks=2,
                launcher=launcher, wrap=["ip", "netns", "exec", h0],
                env={**hosts, "MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp", "UCX_NET_DEVICES": "eth0"})


def params(out):
    with np.load(out / "model.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def net_ns(pid):
    return os.readlink(f"/proc/{pid}/ns/net")


def test_multihost_matches_local(runs, work, hosts):
    cfg = write_config(work, train={"steps": 30, "dtype": "float64"}, dist={"workers": 2})
    local = runs(work, ["--config", cfg, "--out", "local", "--force"])
    assert local.finish(120)[0] == 0, local.stderr[-3000:]
    run = start_multihost(runs, work, hosts, cfg, "multi")
    run.wait_for_step(5)
    ranks = run.mpi_ranks()
    namespaces = {net_ns(pid) for pid in ranks.values()}
    rc, err = run.finish(120)
    assert rc == 0, err[-3000:]
    assert len(ranks) == 2 and len(namespaces) == 2, "the ranks did not run on two hosts"
    assert net_ns(os.getpid()) not in namespaces
    a, b = params(work / "local"), params(work / "multi")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-12


def test_cut_link_ends_naming_the_unreachable_rank(runs, work, hosts):
    cfg = write_config(work)                      # 100000 steps: only the failure can end it
    run = start_multihost(runs, work, hosts, cfg, "cut")
    run.wait_for_step(10)
    cut(hosts, 2)                                 # host 2: rank 1
    t = time.monotonic()
    timeout = TINY["dist"]["timeout"]
    rc, err = run.finish(2 * timeout + 12)
    assert rc is not None, f"job hung after the link was cut:\n{err[-2000:]}"
    assert time.monotonic() - t < 2 * timeout + 12
    assert rc != 0 and wait_gone(run) == {}
    # Across a cut link each side sees the other stop answering, and the first to time out aborts
    # the job: either rank 0 names rank 1, or rank 1 (on the cut host) reports itself.
    assert re.search(r"waiting for rank 1\b|rank 1 of 2 failed: CommError: .* timed out", err), \
        err[-3000:]


def test_cut_link_is_named_by_the_heartbeat_long_before_the_timeout(runs, work, hosts):
    """dist.timeout=60 s: the heartbeats (messages over the TCP link) stop arriving, and the rank
    that misses them for 5 s names the other one and aborts the job."""
    cfg = write_config(work, dist={"workers": 2, "timeout": 60.0})
    run = start_multihost(runs, work, hosts, cfg, "cut_hb")
    run.wait_for_step(10)
    cut(hosts, 2)                                 # host 2: rank 1
    t = time.monotonic()
    rc, err = run.finish(60)
    elapsed = time.monotonic() - t
    assert rc is not None and rc != 0, f"job hung after the link was cut:\n{err[-2000:]}"
    assert elapsed < 30, f"{elapsed:.1f}s after the cut: not the heartbeat but the timeout"
    assert wait_gone(run) == {}
    assert re.search(r"rank [01] stopped answering: no heartbeat for [5-9]\.\d s", err), err[-3000:]
