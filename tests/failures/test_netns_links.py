"""Namespace hosts with shaped links (launch/netns_hosts.sh): the profile's rate is what a TCP
stream reaches, the bytes are counted on the interface, MPI's and distbp's all-reduces cross the
veth (not shared memory), bench's gloo comparison finds rank 0 across hosts, and
launch/mpirun_hostfile.sh runs a job across the hosts with no other setting. Needs root."""
import json
import os
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest

from tests.failures.helpers import ROOT, mpiexec, write_config

SCRIPT = ROOT / "launch" / "netns_hosts.sh"
NET = "10.216.0"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None or shutil.which("tc") is None,
                       reason="iproute2 (ip, tc) not installed"),
]


def sh(env, *args, timeout=120):
    return subprocess.run(["sh", str(SCRIPT), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def hosts():
    prefix = f"dbl{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, DISTBP_NETNS_PREFIX=prefix, DISTBP_NETNS_NET=NET,
               PYTHONPATH=str(ROOT), DISTBP_NETNS_PROBE_MB="16")
    up = sh(env, "up", 3)
    try:
        if up.returncode:
            pytest.skip(f"cannot create network namespaces: {up.stderr.strip()}")
        yield env
    finally:
        sh(env, "down", 3)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert prefix not in left, f"namespaces left behind: {left}"


def tx_bytes(env, k):
    ns = f"{env['DISTBP_NETNS_PREFIX']}_h{k}"
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/statistics/tx_bytes"],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def test_slow_profile_rate_is_measured_and_counted_on_the_interface(hosts):
    assert sh(hosts, "shape", 3, "slow").returncode == 0
    try:
        m = sh(hosts, "measure", 0, 1)
        assert m.returncode == 0, m.stderr
        r = json.loads(m.stdout.strip().splitlines()[-1])
    finally:
        sh(hosts, "shape", 3, "none")
    assert 0.6 < r["rate_gbit"] < 1.05, r            # tbf's 1 Gbit/s, less TCP/IP headers
    assert r["iface_tx_bytes"] >= r["bytes_sent"], r   # it went out of eth0
    assert 0 < r["rtt_us_median"] < 5000, r


def test_unknown_profile_is_refused(hosts):
    bad = sh(hosts, "shape", 3, "warp")
    assert bad.returncode != 0 and "unknown profile 'warp'" in bad.stderr


def test_up_failing_half_way_removes_what_it_made(hosts):
    env = dict(hosts, DISTBP_NETNS_PREFIX=f"dbf{uuid.uuid4().hex[:6]}")
    bad = sh(env, "up", 2, "warp")                   # namespaces made, then the profile fails
    assert bad.returncode != 0
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert env["DISTBP_NETNS_PREFIX"] not in left


def test_each_host_has_its_own_host_name(hosts):
    names = {sh(hosts, "run", k, "hostname").stdout.strip() for k in range(3)}
    assert names == {"distbp-h0", "distbp-h1", "distbp-h2"}


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_bench_across_hosts_crosses_the_veth_with_mpi_and_gloo_peers(hosts):
    """distbp's ring and MPI_Allreduce, 2 ranks on hosts 1 and 2: at least the all-reduces' bytes
    leave host 1's eth0, and gloo's comparison meets at rank 0's address (not 127.0.0.1)."""
    env = dict(hosts)
    env.update(l.split("=", 1) for l in sh(hosts, "env").stdout.split()[1:])
    hostfile = ROOT / f".hosts-{hosts['DISTBP_NETNS_PREFIX']}.txt"
    hostfile.write_text(f"{NET}.2:1\n{NET}.3:1\n")
    try:
        before = tx_bytes(hosts, 1)
        run = subprocess.run(
            ["sh", str(SCRIPT), "run", "0", mpiexec(), "-launcher", "ssh", "-launcher-exec",
             str(SCRIPT), "-iface", "eth0", "-localhost", f"{NET}.1", "-genvall", "-f",
             str(hostfile), "-n", "2", sys.executable, "-m", "distbp.cli", "bench", "allreduce",
             "--sizes", "2M", "--iters", "4", "--json"],
            env=env, capture_output=True, text=True, timeout=240)
        sent = tx_bytes(hosts, 1) - before
    finally:
        hostfile.unlink()
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads([l for l in run.stdout.splitlines() if l.startswith("{")][-1])
    assert res["n"] == 2 and res["mpi"] and res["gloo"], res
    # per all-reduce of 2 MB on 2 ranks each rank sends 2 MB; (3 warm-up + 4 timed) x 3 libraries
    assert sent >= 2e6 * 7 * 3, sent


@pytest.mark.slow
@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_mpirun_hostfile_runs_a_job_across_the_namespace_hosts(hosts, tmp_path):
    cfg = write_config(tmp_path, train={"steps": 6})
    hostfile = tmp_path / "hosts.txt"
    hostfile.write_text(f"# hosts 1 and 2\n{NET}.2:1\n{NET}.3\n")
    before = tx_bytes(hosts, 2)
    run = subprocess.run([str(ROOT / "launch" / "mpirun_hostfile.sh"), str(hostfile), str(cfg),
                          "--out", str(tmp_path / "run"), "--force", "--quiet"],
                         env=dict(hosts, NETNS_HOSTS="1"), capture_output=True, text=True,
                         timeout=240, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    with np.load(tmp_path / "run" / "model.npz") as z:
        grad_bytes = sum(z[k].nbytes for k in z.files)
    # 6 all-reduces of the gradients, each sending them once from every rank of 2: across the link
    assert tx_bytes(hosts, 2) - before >= 6 * grad_bytes


def oks(stdout):
    """The `OK {json}` records of the ranks (their lines may interleave in mpiexec's stdout)."""
    dec, out, at = json.JSONDecoder(), [], stdout.find("OK {")
    while at >= 0:
        obj, end = dec.raw_decode(stdout, at + 3)
        out.append(obj)
        at = stdout.find("OK {", end)
    return out


def mpiexec_across(hosts, hostfile, n, args, env=(), timeout=240):
    """mpiexec on host 0, ranks on the hostfile's namespace hosts, with `netns_hosts.sh env`."""
    full = dict(hosts)
    full.update(l.split("=", 1) for l in sh(hosts, "env").stdout.split()[1:])
    full.update(env)
    return subprocess.run(["sh", str(SCRIPT), "run", "0", mpiexec(), "-launcher", "ssh",
                           "-launcher-exec", str(SCRIPT), "-iface", "eth0", "-localhost", f"{NET}.1",
                           "-genvall", "-f", str(hostfile), "-n", str(n), *map(str, args)],
                          env=full, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_hierarchical_on_two_hosts_of_two_ranks_sends_fewer_bytes_across(hosts, tmp_path):
    """2 namespace hosts x 2 ranks: comm.init wraps itself (host names differ), every rank ends
    with the same bits, and host 1's link carries 2(H-1)/H = 1 buffer per all-reduce instead of the
    flat ring's 2(N-1)/N = 1.5 (counted on eth0)."""
    hostfile = tmp_path / "hosts.txt"
    hostfile.write_text(f"{NET}.2:2\n{NET}.3:2\n")
    sent = {}
    for mode in ("1", "0"):
        before = tx_bytes(hosts, 1)
        run = mpiexec_across(hosts, hostfile, 4, [sys.executable, "-m", "tests.comm.hier_worker"],
                             env={"DISTBP_HIERARCHICAL": mode, "DISTBP_HIER_BODY": "0",
                                  "DISTBP_HIER_REPEAT": "4",
                                  "DISTBP_HIER_EXPECT": "wrapped" if mode == "1" else "flat"})
        sent[mode] = tx_bytes(hosts, 1) - before
        ok = oks(run.stdout)
        assert run.returncode == 0 and len(ok) == 4, run.stdout[-2000:] + run.stderr[-2000:]
        assert len({r["digest"] for r in ok}) == 1
    buffer = 3_000_001 * 4 * 4                        # 4 all-reduces of 12 MB
    print(f"bytes out of host 1 per all-reduce buffer: hierarchical {sent['1'] / buffer:.3f}, "
          f"flat ring {sent['0'] / buffer:.3f}")
    assert 0.9 * buffer < sent["1"] < 1.3 * buffer, sent
    assert sent["0"] > 1.4 * buffer and sent["1"] < 0.8 * sent["0"], sent
