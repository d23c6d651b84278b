"""`ray job submit -- distbp run --backend ray ...` against a real Ray head with token auth
(launch/ray_head.sh: RAY_AUTH_MODE=token, the token in ~/.ray/auth_token): the tiny script's
bits match `distbp run`'s. The head is stopped by killing the processes that carry this test's
marker (not `ray stop`, which would stop every Ray on the machine)."""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.distributed.helpers import (ROOT, distbp_run, free_port, kill_marked, launch, marked,
                                      marked_env, ray_cli)

SCRIPT = Path(__file__).with_name("tiny_script.py")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def ray_head():
    pytest.importorskip("ray")
    assert ray_cli(), "the ray command is missing although ray imports"
    port, dashboard = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="rd", dir="/tmp")          # socket paths must be short
    marker, env = marked_env(RAY_PORT=str(port), RAY_DASHBOARD_PORT=str(dashboard),
                             RAY_NUM_CPUS="2",
                             PATH=f"{Path(ray_cli()).parent}:{Path(sys.executable).parent}:"
                                  f"{__import__('os').environ['PATH']}")
    env.pop("RAY_ADDRESS", None)
    try:
        proc = subprocess.run([str(ROOT / "launch/ray_head.sh"), f"--temp-dir={temp}",
                               "--disable-usage-stats"], env=env, timeout=240,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        yield env, dashboard
    finally:
        kill_marked(marker)
        assert not marked(marker), "Ray head processes survived SIGKILL"
        shutil.rmtree(temp, ignore_errors=True)


def test_job_submit_runs_the_script_on_ray_actors(ray_head, tmp_path):
    env, dashboard = ray_head
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SCRIPT, work / "tiny_script.py")
    out = tmp_path / "ray.json"
    proc = subprocess.run([ray_cli(), "job", "submit", "--address", f"http://127.0.0.1:{dashboard}",
                           "--working-dir", str(work), "--", "python", "-m", "distbp.cli", "run",
                           "--backend", "ray", "--nproc-per-node", "2", "tiny_script.py",
                           str(out)], env=dict(env, RAY_AUTH_MODE="token"), timeout=400,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ray = json.loads(out.read_text())
    assert [f["backend"] for f in ray["facts"]] == ["ray", "ray"]
    local, left = launch(distbp_run("--nproc-per-node", "2", str(SCRIPT), "local.json"), tmp_path)
    assert local.returncode == 0 and not left
    assert ray["params"] == json.loads((tmp_path / "local.json").read_text())["params"]
