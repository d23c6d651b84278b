"""The demo cluster of docker-compose.yml, really started: the image built by launch/docker_image.sh
(its code layer rebuilt from this checkout), `docker-compose up`, a Ray job submitted to the head with
token authentication on, an MPI job across the two MPI containers by ssh and the same by Slurm
(launch/slurm.sh under sbatch, both launchers), each ending where the local backend ends in the same
container; then `docker-compose down -v`, also when a test fails.

Skipped, with the reason, where no Docker engine answers or no base image is at hand (CI: .ci/run
starts dockerd and makes local/debian:bookworm with launch/debian_base.sh)."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.parallel.helpers import max_diff, params

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "distbptest"                       # docker-compose -p: its containers, network, volumes
IMAGE = os.environ.get("DISTBP_TEST_IMAGE", "distbp:test")
BASES = ("local/debian:bookworm", "python:3.11-slim-bookworm")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _sh(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _engine_or_skip():
    for exe in ("docker", "docker-compose"):
        if shutil.which(exe) is None:
            pytest.skip(f"{exe} is not installed (apt-get install docker.io docker-compose)")
    if _sh(["docker", "info"], timeout=60).returncode != 0:
        pytest.skip("no Docker engine answers: start dockerd as root (docs/cluster.md)")
    base = os.environ.get("DISTBP_BASE")
    if base is None and not any(_sh(["docker", "image", "inspect", b]).returncode == 0
                                for b in BASES):
        pytest.skip(f"no base image here ({' or '.join(BASES)}): make one with "
                    "launch/debian_base.sh, or set DISTBP_BASE to one the engine can pull")


class Cluster:
    def __init__(self):
        self.env = dict(os.environ, DISTBP_IMAGE=IMAGE)
        self.compose = ["docker-compose", "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml")]

    def run(self, *args, timeout=300):
        return _sh(self.compose + list(args), timeout=timeout, cwd=ROOT, env=self.env)

    def exec(self, service, *cmd, stdin=None, workdir=None, timeout=300):
        """`docker-compose exec -T`: the command's stdout, or a failure with its output and logs."""
        args = ["exec", "-T"] + (["-w", workdir] if workdir else []) + [service, *cmd]
        proc = _sh(self.compose + args, timeout=timeout, cwd=ROOT, env=self.env, input=stdin)
        assert proc.returncode == 0, (f"{service}: {' '.join(cmd)} exited {proc.returncode}\n"
                                      f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}\n{self.logs()}")
        return proc.stdout

    def put(self, service, src, dest):
        self.exec(service, "sh", "-c", f'mkdir -p "$(dirname {dest})" && cat > {dest}',
                  stdin=Path(src).read_text())

    def fetch(self, service, src, dest):
        cid = self.run("ps", "-q", service).stdout.strip()
        proc = _sh(["docker", "cp", f"{cid}:{src}", str(dest)])
        assert proc.returncode == 0, proc.stderr
        return Path(dest)

    def logs(self):
        return self.run("logs", "--no-color", "--tail", "15").stdout[-4000:]

    def wait(self, what, check, timeout=300):
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"{what}: not after {timeout} s\n{self.logs()}"
            time.sleep(2)


@pytest.fixture(scope="module")
def cluster():
    _engine_or_skip()
    t0 = time.monotonic()
    build = _sh([str(ROOT / "launch" / "docker_image.sh"), "--quiet"], timeout=1500,
                env=dict(os.environ, DISTBP_IMAGE=IMAGE, DISTBP_EXTRAS="mpi,ray"))
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    c = Cluster()
    c.run("down", "-v", "--remove-orphans")           # what a killed earlier run left behind
    try:
        t1 = time.monotonic()
        up = c.run("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr[-3000:]
        c.wait("3 Ray nodes", lambda: _alive_ray_nodes(c) == 3)
        c.wait("ssh between the MPI nodes", lambda: all(
            c.run("exec", "-T", a, "ssh", b, "true").returncode == 0
            for a, b in (("mpi-0", "mpi-1"), ("mpi-1", "mpi-0"))))
        c.wait("2 idle Slurm nodes", lambda: c.run(
            "exec", "-T", "mpi-0", "sinfo", "-h", "-N", "-o", "%N %T").stdout.split()
            == ["mpi-0", "idle", "mpi-1", "idle"])
        print(f"\nimage built in {t1 - t0:.0f} s, cluster up in {time.monotonic() - t1:.0f} s")
        yield c
    finally:
        down = c.run("down", "-v", "--remove-orphans", "--timeout", "5")
        assert down.returncode == 0, down.stderr[-2000:]


def _alive_ray_nodes(c):
    proc = c.run("exec", "-T", "ray-head", "ray", "list", "nodes", "--format", "json",
                 "--filter", "state=ALIVE", timeout=60)
    return len(json.loads(proc.stdout)) if proc.returncode == 0 else 0


@pytest.fixture(scope="module")
def mpi_reference(cluster, tmp_path_factory):
    """tests/parallel/tiny.yaml in /runs/cfg, and its local run (one process) on mpi-0."""
    cluster.put("mpi-0", ROOT / "tests" / "parallel" / "tiny.yaml", "/runs/cfg/tiny.yaml")
    cluster.exec("mpi-0", "distbp", "train", "--config", "/runs/cfg/tiny.yaml", "--backend",
                 "local", "--workers", "1", "--out", "/runs/local", "--quiet")
    return params(cluster.fetch("mpi-0", "/runs/local", tmp_path_factory.mktemp("ref") / "local"))


def test_image_holds_no_private_key(cluster):
    found = _sh(["docker", "run", "--rm", "--network", "none", IMAGE, "sh", "-c",
                 "find / -xdev \\( -name 'ssh_host_*' -o -name 'id_rsa*' -o -name 'id_ed25519*' "
                 "-o -name 'id_ecdsa*' -o -name 'munge.key' "
                 "-o -name authorized_keys -o -name auth_token \\) -print; "
                 "grep -rlE 'BEGIN (OPENSSH|RSA|EC|DSA) PRIVATE KEY' /etc /root /opt/distbp || true"])
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == []


def test_mpi_job_across_two_containers_matches_local(cluster, mpi_reference, tmp_path):
    hosts = cluster.exec("mpi-0", "mpiexec", "-f", "/etc/distbp/hostfile", "-n", "2", "hostname")
    assert sorted(hosts.split()) == ["mpi-0", "mpi-1"]
    out = cluster.exec("mpi-0", "launch/mpirun_hostfile.sh", "/etc/distbp/hostfile",
                       "/runs/cfg/tiny.yaml", "--out", "/runs/mpi", "--quiet")
    assert "done: 6 steps on 2 worker(s)" in out
    mpi = cluster.fetch("mpi-0", "/runs/mpi", tmp_path / "mpi")
    assert max_diff(mpi_reference, params(mpi)) < 1e-12
    summary = json.loads((mpi / "summary.json").read_text())
    assert summary["backend"] == "mpi" and summary["world_size"] == 2


@pytest.mark.parametrize("launcher", ["mpiexec", "srun"])
def test_slurm_batch_job_on_two_nodes_matches_local(cluster, mpi_reference, tmp_path, launcher):
    """launch/slurm.sh as it stands (2 nodes x 1 task x 2 CPUs), under `sbatch --wait`."""
    log = f"/runs/slurm-{launcher}.out"
    cluster.exec("mpi-0", "env", f"LAUNCHER={launcher}", "sbatch", "--wait", "-o", log,
                 "launch/slurm.sh", "/runs/cfg/tiny.yaml", "--out", f"/runs/slurm-{launcher}",
                 "--quiet")
    out = cluster.exec("mpi-0", "cat", log)
    assert "2 rank(s) on mpi-[0-1]" in out and "done: 6 steps on 2 worker(s)" in out, out
    run = cluster.fetch("mpi-0", f"/runs/slurm-{launcher}", tmp_path / "run")
    assert max_diff(mpi_reference, params(run)) < 1e-12


def test_ray_job_submitted_to_the_head_matches_local(cluster, tmp_path):
    # token authentication is on: the job server refuses a request without the token
    status = cluster.exec("ray-head", "python3", "-c",
                          "import urllib.request as u, urllib.error as e\n"
                          "try: u.urlopen('http://127.0.0.1:8265/api/jobs/'); print(200)\n"
                          "except e.HTTPError as x: print(x.code)")
    assert status.strip() == "401"
    cluster.put("ray-head", ROOT / "tests" / "ray" / "tiny.yaml", "/tmp/job/tiny.yaml")
    steps = ["--set", "train.steps=20"]
    out = cluster.exec("ray-head", "env", "RAY_WORKING_DIR=/tmp/job", "launch/ray_submit.sh",
                       "--config", "tiny.yaml", "--out", "/runs/ray", "--quiet", *steps)
    assert "done: 20 steps on 2 worker(s)" in out
    # the head offers one CPU: worker 0 runs there, worker 1 in a worker container
    actors = json.loads(cluster.exec("ray-head", "ray", "list", "actors", "--detail", "--format",
                                     "json", "--filter", "class_name=Worker"))
    assert len({a["node_id"] for a in actors}) == 2, actors
    cluster.exec("ray-head", "distbp", "train", "--config", "tiny.yaml", "--backend", "local",
                 "--workers", "2", "--out", "/runs/ray-local", "--quiet", *steps,
                 workdir="/tmp/job")
    ray = cluster.fetch("ray-head", "/runs/ray", tmp_path / "ray")
    ref = cluster.fetch("ray-head", "/runs/ray-local", tmp_path / "local")
    assert max_diff(params(ref), params(ray)) < 1e-12
    summary = json.loads((ray / "summary.json").read_text())
    assert summary["backend"] == "ray" and summary["world_size"] == 2
    assert summary["ps_shards"] == 2 and summary["steps"] == 20
