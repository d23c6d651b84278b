"""`distbp --version`, `python -m distbp`, `distbp.__version__`, and `distbp config`: every config
key with its default and its documentation."""
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

import distbp
from distbp.train import config as C
from distbp.train import config_doc

ROOT = Path(__file__).parents[1]


def run(*args):
    return subprocess.run([sys.executable, "-m", "distbp", *args], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)


def test_version_is_the_package_metadata():
    assert distbp.__version__ == metadata.version("distbp")
    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"distbp {distbp.__version__}\n"


def test_python_dash_m_distbp_is_the_command():
    proc = run("--help")
    assert proc.returncode == 0 and "usage: distbp" in proc.stdout
    for command in ("train", "data", "config", "--version"):
        assert command in proc.stdout


def test_config_lists_every_key_with_its_default_and_doc():
    proc = run("config")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout) == C.DEFAULTS          # the output is a usable config file
    lines = {}
    section = None
    for line in proc.stdout.splitlines():
        if not line.startswith(" "):
            section = line.rstrip(":")
            continue
        key = line.split(":", 1)[0].strip()
        lines[f"{section}.{key}"] = line
    assert set(lines) == set(C.flat_keys())
    docs = config_doc.key_docs()
    assert docs["train.steps"].startswith("optimizer steps")
    for key, line in lines.items():
        if docs.get(key):
            assert "# " + docs[key] in line, line
        for choice in C.CHOICES.get(key, ()):
            assert choice in line, line


def test_config_resolves_a_file_with_overrides(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("train: {steps: 7}\n")
    proc = run("config", "--config", str(cfg), "--set", "optim.lr=0.5")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert resolved["train"]["steps"] == 7 and resolved["optim"]["lr"] == 0.5
    bad = run("config", "--set", "train.stps=3")
    assert bad.returncode == 2 and "did you mean 'train.steps'" in bad.stderr
