"""Every example runs, briefly, on 2 workers, with the command its header gives; the DDP example
prints the same numbers under `distbp run`, `mpiexec` and Ray."""
import ast
import re
import sys

import pytest

from tests.distributed.helpers import ROOT, distbp_run, launch, mpiexec

EXAMPLES = ROOT / "examples"
OWN = ["--epochs", "2", "--batch-size", "128"]
GPT = ["--steps", "2", "--batch-size", "4", "--block-size", "16", "--n-embd", "16", "--n-head", "2",
       "--n-layer", "1", "--eval-batches", "1", "--sample-chars", "5"]


def run_ok(cmd, tmp_path):
    proc, left = launch(cmd, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not left, f"processes left running: {left}"
    return proc.stdout


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_each_example_starts_with_its_commands(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    commands = [line.strip() for line in doc.splitlines() if line.startswith("    ")]
    assert commands and any(c.startswith(("distbp ", "mpiexec ")) for c in commands), path.name


def test_ddp_own_model_same_numbers_under_distbp_run_and_mpiexec(tmp_path):
    script = str(EXAMPLES / "ddp_own_model.py")
    local = run_ok(distbp_run("--nproc-per-node", "2", script, *OWN), tmp_path)
    assert local.count("epoch ") == 2 and "test accuracy" in local
    if mpiexec():
        assert run_ok([mpiexec(), "-n", "2", sys.executable, script, *OWN], tmp_path) == local


@pytest.mark.slow
def test_ddp_own_model_same_numbers_on_ray(tmp_path):
    pytest.importorskip("ray")
    script = str(EXAMPLES / "ddp_own_model.py")
    local = run_ok(distbp_run("--nproc-per-node", "2", script, *OWN), tmp_path)
    ray = run_ok(distbp_run("--backend", "ray", "--address", "local", "--nproc-per-node", "2",
                            script, *OWN), tmp_path)
    # Ray prefixes each line of an actor's output with "(ScriptActor pid=...) ", in colour.
    lines = [re.sub(r"^.*?\(ScriptActor pid=\d+\)\S* ", "", line) for line in ray.splitlines()]
    assert [line for line in lines if "epoch " in line] == local.splitlines()


def test_char_gpt(tmp_path):
    out = run_ok(distbp_run("--nproc-per-node", "2", str(EXAMPLES / "char_gpt.py"), *GPT), tmp_path)
    assert "2 rank(s)" in out and "step 1: train loss" in out and "bits per character" in out
    assert "sample: 'def " in out


def test_custom_model_through_distbp_train(tmp_path):
    out = run_ok([sys.executable, "-m", "distbp.cli", "train", "--config",
                  str(EXAMPLES / "custom_model.yaml"), "--out", "run", "--workers", "2", "--quiet",
                  "--set", "train.steps=4", "--set", "train.eval_every=0",
                  "--set", "data.name=synthetic", "--set", "data.path=data/synthetic",
                  "--set", "model.kwargs.num_classes=4", "--set", "checkpoint.every_steps=2"],
                 tmp_path)
    assert "done: 4 steps on 2 worker(s)" in out
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_shortest_script_in_the_docs(tmp_path):
    """docs/api.md's first code block is a complete script: it runs on 2 workers as given."""
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)[0]
    (tmp_path / "train.py").write_text(code)
    run_ok(distbp_run("--nproc-per-node", "2", "train.py"), tmp_path)
