"""Launch a command the way a user would, and find what it left behind."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "DISTBP_TEST_RUN"


def venv_command(name):
    """The command installed next to this Python (the venv's), else the one on PATH (or None)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name)


def mpiexec():
    return venv_command("mpiexec")


def ray_cli():
    return venv_command("ray")


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def marked_env(**extra):
    """(marker, environment) for a command whose every descendant we can find later."""
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    return marker, dict(os.environ, PYTHONPATH=str(ROOT), **{MARKER: marker}, **extra)


def kill_marked(marker):
    """SIGKILL every live process carrying `marker` (ours, so nothing else)."""
    for pid in marked(marker, seconds=0):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def launch(cmd, tmp_path, timeout=120):
    """Run cmd with a marker in its environment -> (finished Popen with .stdout/.stderr text,
    pids still carrying the marker). /dev/shm/distbp_<launcher pid>_* must be gone."""
    marker, env = marked_env()
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout, proc.stderr = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    assert not glob.glob(f"/dev/shm/distbp_{proc.pid}_*"), "shared memory left behind"
    return proc, marked(marker)


def marked(marker, seconds=5.0):
    tag, end = f"{MARKER}={marker}".encode(), time.monotonic() + seconds
    while True:
        left = []
        for d in glob.glob("/proc/[0-9]*"):
            try:
                if tag in Path(d, "environ").read_bytes().split(b"\0") and \
                        Path(d, "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    left.append(int(d[6:]))
            except OSError:
                pass
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


def distbp_run(*flags):
    return [sys.executable, "-m", "distbp.cli", "run", *flags]
