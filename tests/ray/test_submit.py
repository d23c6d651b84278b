"""A real two-node Ray cluster on this machine, started by the scripts docker-compose runs:
launch/ray_head.sh (token auth, dashboard on 127.0.0.1, one CPU) and launch/ray_worker.sh (a second
node with one CPU, so the two training workers run on different nodes); a run submitted by
launch/ray_submit.sh (`ray job submit --working-dir ...`); and the compose file's validity."""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.distributed.helpers import free_port, kill_marked, marked, marked_env, ray_cli

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).parent / "tiny.yaml"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def ray_head(tmp_path):
    pytest.importorskip("ray")
    ray_bin = ray_cli()
    assert ray_bin, "the ray command is missing although ray imports"
    port = free_port()
    # every process of this cluster carries the marker: teardown kills exactly those (`ray stop
    # --force` would kill every Ray cluster on the machine, a second test suite's too)
    marker, env = marked_env(RAY_PORT=str(port), RAY_DASHBOARD_PORT=str(free_port()),
                             RAY_NUM_CPUS="1", PATH=f"{Path(ray_bin).parent}:{os.environ['PATH']}")
    env.pop("RAY_ADDRESS", None)
    head_tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")   # sockets need a short path; its own
    node_tmp = tempfile.mkdtemp(prefix="rn", dir="/tmp")   # session directories, not /tmp/ray's
    try:
        proc = subprocess.run([ROOT / "launch/ray_head.sh", f"--temp-dir={head_tmp}",
                               "--disable-usage-stats"], env=env,
                              timeout=180, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        proc = subprocess.run([ROOT / "launch/ray_worker.sh", f"127.0.0.1:{port}",
                               f"--dashboard-agent-listen-port={free_port()}",
                               f"--temp-dir={node_tmp}", "--disable-usage-stats"],
                              env=env, timeout=180,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        yield env
    finally:
        kill_marked(marker)
        assert not marked(marker), "Ray processes survived SIGKILL"
        shutil.rmtree(head_tmp, ignore_errors=True)
        shutil.rmtree(node_tmp, ignore_errors=True)


def test_ray_job_submit_trains_on_a_real_head(ray_head, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(CONFIG, work / "tiny.yaml")
    out = tmp_path / "run"
    env = dict(ray_head, RAY_WORKING_DIR=str(work))
    proc = subprocess.run([ROOT / "launch/ray_submit.sh", "--config", "tiny.yaml", "--out",
                           str(out), "--quiet", "--set", "train.steps=8"],
                          env=env, timeout=240, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "done: 8 steps on 2 worker(s)" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "ray" and summary["world_size"] == 2
    assert summary["ps_shards"] == 2 and summary["steps"] == 8


def test_docker_compose_file_is_valid():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (CI: apt-get install docker-compose)")
    proc = subprocess.run([exe, "-f", ROOT / "docker-compose.yml", "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
