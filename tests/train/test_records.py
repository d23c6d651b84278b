"""What a run says about itself: every metrics.jsonl record has the wall-clock and elapsed training
time, summary.json has the provenance, model.safetensors matches model.npz, and with
train.tensorboard the same numbers are TensorBoard scalars (read back with TensorBoard's reader)."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import distbp
from distbp.comm.single import SingleCommunicator
from distbp.safetensors import load_file
from distbp.train.records import Recorder, git_commit, provenance, scalars

ROOT = Path(__file__).parents[2]
TINY = ROOT / "tests" / "parallel" / "tiny.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """tiny.yaml on 2 local workers, TensorBoard on; run twice with --force (the second must
    replace the first's event file, not add to it)."""
    cwd = tmp_path_factory.mktemp("records")
    args = [sys.executable, "-m", "distbp", "train", "--config", str(TINY), "--out", "run",
            "--workers", "2", "--quiet", "--force", "--set", "train.tensorboard=true",
            "--set", "train.eval_every=2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.time()
    for _ in range(2):
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (cwd / "run" / "metrics.jsonl").read_text().splitlines()]
    return cwd / "run", records, start, proc.stdout


def test_every_record_has_wall_clock_and_elapsed_time(run):
    out, records, start, _ = run
    assert {r["kind"] for r in records} == {"start", "train", "eval"}
    times = [r["time"] for r in records]
    elapsed = [r["elapsed"] for r in records]
    assert start <= times[0] and times == sorted(times) and times[-1] <= time.time()
    assert 0 <= elapsed[0] and elapsed == sorted(elapsed)
    # elapsed counts from the start of training: never more than the wall clock that passed
    assert elapsed[-1] - elapsed[0] <= times[-1] - times[0] + 0.01


def test_summary_records_provenance(run):
    out, _, _, stdout = run
    p = json.loads((out / "summary.json").read_text())["provenance"]
    assert p["distbp"] == distbp.__version__
    assert p["world_size"] == 2 and p["backend"] == "local"
    assert p["hosts"] == [socket.gethostname()] * 2
    assert p["python"] == ".".join(map(str, sys.version_info[:3]))
    assert p["numpy"] == np.__version__
    assert p["blas"] and all(b["library"] and b["version"] and b["threads"] >= 1 for b in p["blas"])
    assert p["git_commit"] == git_commit(ROOT)
    assert stdout.startswith("done: 6 steps on 2 worker(s)")       # the CLI's line, unchanged


def test_model_safetensors_matches_model_npz(run):
    out = run[0]
    with np.load(out / "model.npz", allow_pickle=False) as z:
        npz = {k: z[k] for k in z.files}
    st = load_file(out / "model.safetensors")
    assert list(st) == list(npz)
    for k in npz:
        assert st[k].dtype == npz[k].dtype and (st[k] == npz[k]).all(), k


def test_tensorboard_events_hold_the_records(run):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out, records, _, _ = run
    files = list((out / "tensorboard").iterdir())
    assert len(files) == 1, files                      # --force replaced the first run's
    acc = ea_mod.EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    layers = set(train[0]["layers"])
    assert layers and {f"grad_norm/{name}" for name in layers} <= tags
    for key in ("loss", "lr", "grad_norm", "samples_per_second"):
        got = [(e.step, e.value) for e in acc.Scalars(f"train/{key}")]
        want = [(r["step"], r[key]) for r in train]
        assert [s for s, _ in got] == [s for s, _ in want]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-6)
    for key in ("accuracy", "macro_f1", "mean_average_precision", "loss"):
        got = [(e.step, e.value) for e in acc.Scalars(f"eval/{key}")]
        assert [s for s, _ in got] == [r["step"] for r in evals] == [2, 4, 6]
        np.testing.assert_allclose([v for _, v in got], [r[key] for r in evals], rtol=1e-6)
    name = sorted(layers)[0]
    got = [e.value for e in acc.Scalars(f"grad_norm/{name}")]
    np.testing.assert_allclose(got, [r["layers"][name]["grad_norm"] for r in train], rtol=1e-6)
    assert acc.Scalars("train/loss")[0].wall_time == pytest.approx(train[0]["time"], abs=1e-3)


def test_resumed_recorder_continues_elapsed(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 5, "elapsed": 12.5}\n'
                                            '{"kind": "tr')                 # cut short by a crash
    rec = Recorder(tmp_path, resume=True).write({"kind": "train", "step": 6, "loss": 1.0})
    assert 12.5 <= rec["elapsed"] < 20
    fresh = Recorder(tmp_path / "new", resume=False)
    (tmp_path / "new").mkdir()
    assert fresh.write({"kind": "eval", "step": 1})["elapsed"] < 5


def test_scalars_tags():
    record = {"kind": "train", "step": 3, "loss": 0.5, "lr": 0.1, "skipped_steps": 0,
              "time": 1.0, "elapsed": 2.0, "layers": {"fc.weight": {"grad_norm": 0.25}}}
    assert scalars(record) == {"train/loss": 0.5, "train/lr": 0.1, "train/skipped_steps": 0.0,
                               "grad_norm/fc.weight": 0.25}


def test_provenance_on_one_process_and_outside_a_checkout(tmp_path):
    p = provenance(SingleCommunicator(), "single")
    assert p["hosts"] == [socket.gethostname()] and p["world_size"] == 1
    assert git_commit(tmp_path) is None                          # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "m"], check=True)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "f").write_text("y")
    assert git_commit(tmp_path) == head + "-dirty"
