"""A traced 2-worker run writes a valid Chrome trace: every rank has a track, and every bucket's
reduction lies inside the step that produced it (after that step's backward started, finished
before its optimizer step and before the next step's forward); the sharded optimizer's parameter
all-gather lies inside the optimizer step."""
import json
from collections import defaultdict
from pathlib import Path

import pytest

from distbp.cli import main as distbp_main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "mnist1d_mlp.yaml"
WORKERS, STEPS = 2, 6
EPS = 1.0   # microseconds: ts/dur are floats computed from the same perf_counter readings


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trace")
    data = tmp / "synthetic"
    assert distbp_main(["data", "prepare", "synthetic", "--out", str(data)]) == 0
    out = tmp / "run"
    # a small bucket size splits the MLP's gradients into several buckets
    argv = ["train", "--config", str(CONFIG), "--workers", str(WORKERS),
            "--out", str(out), "--trace", "--quiet",
            "--set", "data.name=synthetic", "--set", f"data.path={data}",
            "--set", "model.hidden=[64, 64]", "--set", f"train.steps={STEPS}",
            "--set", "train.log_every=3", "--set", "train.eval_every=0",
            "--set", "train.global_batch_size=64", "--set", "dist.bucket_mb=0.01",
            "--set", "checkpoint.every_steps=0"]
    assert distbp_main(argv) == 0
    trace = json.loads((out / "trace.json").read_text())
    return out, trace["traceEvents"]


def spans(events):
    """(pid, step) -> {name: [events]} over the complete ('X') events; the buckets' reductions
    are under "comm"."""
    by = defaultdict(lambda: defaultdict(list))
    for e in events:
        if e["ph"] == "X":
            bucket = e["cat"] == "comm" and "bucket" in e["args"]
            by[e["pid"], e["args"]["step"]]["comm" if bucket else e["name"]].append(e)
    return by


def test_trace_is_valid_and_has_every_rank(traced_run):
    out, events = traced_run
    assert all({"ph", "pid", "name"} <= e.keys() for e in events)
    named = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    assert named == {r: f"rank {r}" for r in range(WORKERS)}
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] >= 0 and isinstance(e["ts"], float), e
            assert e["tid"] == (1 if e["cat"] == "comm" else 0), e
    by = spans(events)
    for rank in range(WORKERS):
        for step in range(STEPS):
            names = by[rank, step].keys()
            assert {"data", "forward", "backward", "optimizer step", "comm",
                    "allgather parameters"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["overlap_fraction"] <= 1.0


def test_every_bucket_reduced_once_per_step_on_every_rank(traced_run):
    by = spans(traced_run[1])
    buckets = {e["args"]["bucket"] for e in by[0, 0]["comm"]}
    assert len(buckets) > 1, "bucket_mb too large to test several buckets"
    for rank in range(WORKERS):
        for step in range(STEPS):
            got = sorted(e["args"]["bucket"] for e in by[rank, step]["comm"])
            assert got == sorted(buckets), (rank, step, got)


def test_all_reduce_lies_inside_the_step_that_produced_it(traced_run):
    by = spans(traced_run[1])
    for (rank, step), names in by.items():
        (backward,) = names["backward"]
        (update,) = names["optimizer step"]
        nxt = by.get((rank, step + 1), {}).get("forward")
        for c in names["comm"]:
            where = f"rank {rank} step {step} {c['name']}"
            assert c["ts"] >= backward["ts"] - EPS, where + " started before its backward"
            assert c["ts"] + c["dur"] <= update["ts"] + EPS, where + " ended after the update"
            if nxt:
                assert c["ts"] + c["dur"] <= nxt[0]["ts"] + EPS, where + " ran into the next step"
        (gather,) = names["allgather parameters"]
        assert update["ts"] - EPS <= gather["ts"] and \
            gather["ts"] + gather["dur"] <= update["ts"] + update["dur"] + EPS, (rank, step)
