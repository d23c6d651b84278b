"""The launch scripts users run: each starts with the command it runs, and runs."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TINY = ROOT / "tests" / "parallel" / "tiny.yaml"


def run(script, *args, env=None, cwd):
    bindir = str(Path(sys.executable).parent)
    e = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"], PYTHONPATH=str(ROOT),
             **(env or {}))
    return subprocess.run(["bash", str(ROOT / "launch" / script), *map(str, args)], cwd=cwd,
                          env=e, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "launch").glob("*.sh")))
def test_script_starts_with_the_command_it_runs(script):
    header = (ROOT / "launch" / script).read_text().splitlines()[1:6]
    assert header[0].startswith("# ")
    commands = ("distbp ", "ray ", "mpiexec ", "launch/", "sshd", "ip netns")
    assert any(line.startswith("#") and any(c in line for c in commands) for line in header[:4])


@pytest.mark.parametrize("script, env", [("local.sh", {"WORKERS": "2"}),
                                         ("mpirun.sh", {"NP": "2"})])
def test_launchers_train(tmp_path, script, env):
    proc = run(script, TINY, "--out", tmp_path / "run", "--quiet", "--set", "train.steps=2",
               env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done: 2 steps on 2 worker(s)" in proc.stdout
    assert (tmp_path / "run" / "summary.json").is_file()


def test_hostfile_launcher_on_loopback(tmp_path):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("127.0.0.1\n127.0.0.1\n")
    proc = run("mpirun_hostfile.sh", hosts, TINY, "--out", tmp_path / "run", "--quiet",
               "--set", "train.steps=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done: 2 steps on 2 worker(s)" in proc.stdout
