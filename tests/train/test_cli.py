"""`distbp train` on bad input: one line naming the culprit, exit code 2, no traceback, and nothing
already on disk touched. Runs the real command in a subprocess."""
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).parents[2]
TINY = ROOT / "tests" / "parallel" / "tiny.yaml"


def distbp(*args, cwd):
    return subprocess.run([sys.executable, "-m", "distbp.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def snapshot(path):
    return {p: p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    proc = distbp("data", "prepare", "synthetic", "--out", d / "data" / "synthetic", cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["--config", "missing.yaml"], ["config file 'missing.yaml' not found"]),
    (["--set", "train.stepz=3"], ["'train.stepz'", "did you mean 'train.steps'"]),
    (["--set", "train.steps=many"], ["'train.steps'", "must be int"]),
    (["--workers", "0"], ["--workers must be >= 1"]),
    (["--set", "optim.lr=-0.1"], ["'optim.lr'"]),
    (["--set", "train.global_batch_size=2", "--workers", "3"], ["smaller than dist.workers"]),
    (["--set", "train.global_batch_size=5000"], ["fewer than one global batch"]),
    (["--set", "data.label=target"], ["label", "target"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
])
def test_bad_input(work, args, fragments):
    if "--config" not in args:
        args = ["--config", TINY] + args
    before = snapshot(work)
    proc = distbp("train", *args, "--out", work / "run", cwd=work)
    one_line_error(proc, *fragments)
    assert snapshot(work) == before


def test_a_bad_comm_setting_in_the_environment_is_named(work):
    before = snapshot(work)
    proc = subprocess.run([sys.executable, "-m", "distbp.cli", "train", "--config", TINY,
                           "--workers", "2", "--out", work / "run"], cwd=work, capture_output=True,
                          text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), DISTBP_COMM_SPIN_MS="fast"))
    one_line_error(proc, "DISTBP_COMM_SPIN_MS='fast'", "milliseconds")
    assert snapshot(work) == before


def test_corrupt_and_non_parquet_files_are_named(work):
    bad = work / "bad"
    bad.mkdir()
    (bad / "train.parquet").write_bytes(b"PAR1 this is not parquet")
    pq.write_table(pa.table({"features": [[1.0, 2.0]], "label": [0]}), bad / "test.parquet")
    proc = distbp("train", "--config", TINY, "--set", "data.name=parquet",
                  "--set", f"data.path={bad}", "--out", work / "run2", cwd=work)
    one_line_error(proc, "train.parquet")
    (bad / "train.parquet").write_text("a,b\n1,2\n")
    proc = distbp("train", "--config", TINY, "--set", "data.name=parquet",
                  "--set", f"data.path={bad}", "--out", work / "run2", cwd=work)
    one_line_error(proc, "train.parquet")
    assert not (work / "run2").exists()


def test_existing_run_is_refused_then_resumed_or_forced(work):
    out = work / "run3"
    ok = distbp("train", "--config", TINY, "--out", out, "--quiet", cwd=work)
    assert ok.returncode == 0, ok.stderr
    before = snapshot(out)
    proc = distbp("train", "--config", TINY, "--out", out, cwd=work)
    one_line_error(proc, "already holds a run", "--resume", "--force")
    assert snapshot(out) == before
    forced = distbp("train", "--config", TINY, "--out", out, "--quiet", "--force", cwd=work)
    assert forced.returncode == 0, forced.stderr


def test_debug_shows_the_traceback(work):
    proc = distbp("train", "--config", "missing.yaml", "--debug", cwd=work)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("bad, fragments", [
    (["--set", "data.shape=[1, 50]"], ["data.shape", "holds 40 values per sample"]),
    (["--set", "data.augment=[{blur: 1}]"], ["data.augment", "unknown augmentation 'blur'"]),
])
def test_user_data_errors_are_caught_before_any_worker_and_leave_no_run(work, bad, fragments):
    """Issue 20's two cases: found in the launcher (exit 2, one line, no rank named), --out left
    absent, so the corrected command runs at once, without --force."""
    user = work / f"user{len(bad[1])}"
    user.mkdir()
    for split, n in (("train", 48), ("test", 16)):        # variable-length lists of 40 values
        pq.write_table(pa.table({"features": pa.array([[0.5] * 40] * n),
                                 "label": pa.array([i % 3 for i in range(n)])}),
                       user / f"{split}.parquet")
    args = ["--config", TINY, "--workers", "2", "--set", "data.name=parquet",
            "--set", f"data.path={user}", "--set", "model.name=mlp", "--set", "data.augment=[]",
            "--set", "data.shape=[1, 40]", "--out", user / "run", "--quiet"]
    proc = distbp("train", *args, *bad, cwd=work)
    one_line_error(proc, *fragments)
    assert "rank" not in proc.stderr
    assert not (user / "run").exists()
    fixed = distbp("train", *args, cwd=work)
    assert fixed.returncode == 0, fixed.stderr
