"""dist.compression in `distbp train`: 2-worker runs under each setting end with every rank on the
same bits (the trainer checks a digest of every rank's parameters) and fp16/bf16 close to the
uncompressed run; the sharded optimizer composes with the hooks; PowerSGD resumes bit-identically
from its checkpointed state; auto's choice (a pure function, fed numbers here) is recorded in
summary.json and kept on resume. The hooks' own numbers: tests/comm/test_hooks.py."""
import json
import math

import numpy as np
import pytest

import distbp.nn as nn
from distbp.comm.single import SingleCommunicator
from distbp.errors import UsageError
from distbp.parallel import auto_compression as auto
from distbp.parallel.comm_hooks import GradBucket
from distbp.parallel.compression import (BucketCompression, bucket_compression_hook, parse,
                                         start_iter)
from distbp.parallel.ddp import check_same_parameters
from distbp.parallel.reducer import make_buckets
from distbp.plan import Link
from tests.parallel.helpers import max_diff, params, train

F32 = ["train.dtype=float32"]      # bf16 needs float32 gradients; tiny.yaml trains float64


def summary(out):
    return json.loads((out / "summary.json").read_text())


def interrupt_after_first_checkpoint(out):
    """Make `out` look like a run killed after its step-3 checkpoint (tiny.yaml: every 3 steps)."""
    for name in ("model.npz", "summary.json", "checkpoints/step_000006.json",
                 "checkpoints/step_000006.npz"):
        (out / name).unlink()


# ---- 2-worker runs -------------------------------------------------------------------------------
def test_fp16_and_bf16_train_close_to_uncompressed_and_compose_with_the_sharded_optimizer(in_tmp):
    plain = train(in_tmp, "none", F32, workers=2)
    assert "compression" not in summary(plain)
    runs = {c: train(in_tmp, c, F32 + [f"dist.compression={c}"], workers=2)
            for c in ("fp16", "bf16")}
    for c, out in runs.items():
        s = summary(out)["compression"]
        assert s["spec"] == c and set(s["choices"]) == {c}
        assert len(s["parameters_sha256"]) == 64        # every rank's digest was rank 0's
        assert summary(out)["final_loss"] == pytest.approx(summary(plain)["final_loss"], rel=1e-2)
        assert 0 < max_diff(params(plain), params(out)) < 2e-2, c   # compressed, and not far off
    # shard mode stops bf16 at its reduce-scatter and rounds the shard as the all-gather would
    unsharded = train(in_tmp, "bf16u", F32 + ["dist.compression=bf16",
                                              "dist.shard_optimizer=false"], workers=2)
    assert max_diff(params(runs["bf16"]), params(unsharded)) == 0.0


def test_powersgd_resumes_bit_identical_from_its_checkpointed_state(in_tmp):
    sets = F32 + ["dist.compression=powersgd:1", "optim.name=adamw", "optim.lr=0.01"]
    straight = train(in_tmp, "p", sets, workers=2)
    s = summary(straight)["compression"]
    assert s["start_powerSGD_iter"] == 2 and s["powersgd_compress_rate"]["1"] > 1
    assert len(s["parameters_sha256"]) == 64
    out = train(in_tmp, "pr", sets, workers=2)
    saved = json.loads((out / "checkpoints/step_000003.json").read_text())["comm_hook"]
    assert saved["powersgd"]["1"]["iter"] == 3          # compressing by then (from round 2)
    interrupt_after_first_checkpoint(out)
    train(in_tmp, "pr", sets, workers=2, extra=["--resume"])
    assert max_diff(params(straight), params(out)) == 0.0
    # the guard: without the hook state (error feedback, Q, iteration) the resumed run differs
    interrupt_after_first_checkpoint(out)
    ck = out / "checkpoints/step_000003.json"
    meta = json.loads(ck.read_text())
    del meta["comm_hook"]
    ck.write_text(json.dumps(meta))
    train(in_tmp, "pr", sets, workers=2, extra=["--resume"])
    assert max_diff(params(straight), params(out)) > 0


def test_auto_records_its_choice_and_a_resumed_run_keeps_it(in_tmp):
    sets = F32 + ["dist.compression=auto"]
    out = train(in_tmp, "a", sets, workers=2)
    s = summary(out)["compression"]
    record = s["auto"]
    assert record["world_size"] == 2 and record["shard"] is True
    assert record["link"]["alpha_us"] > 0 and record["link"]["GBps"] > 0
    assert len(record["buckets"]) == len(s["choices"]) > 1
    for b, choice in zip(record["buckets"], s["choices"]):
        assert b["choice"] == choice
        assert set(b["ms"]) == {"none", "bf16", "powersgd:1", "powersgd:2"}
        assert all(v > 0 and math.isfinite(v) for v in b["ms"].values())
        best = min(b["ms"], key=b["ms"].get)
        assert choice in ("none", best)
        if choice != "none":
            assert b["ms"][choice] < (1 - record["margin"]) * b["ms"]["none"]
    line = auto.describe(record)                # what rank 0 logs
    assert "\n" not in line and line.startswith("dist.compression=auto: ") and " ms a step" in line
    straight = params(out)
    interrupt_after_first_checkpoint(out)
    train(in_tmp, "a", sets, workers=2, extra=["--resume"])
    assert summary(out)["compression"]["auto"] == record       # not measured again
    assert max_diff(straight, params(out)) == 0.0


# ---- auto's decision: pure, fed numbers ---------------------------------------------------------
LAYER = [(1024, 1024), (1024,)]             # a 4 MB float32 bucket: one matrix and its bias
COSTS = {"bf16": 2e-3, "powersgd:1": 5e-3}  # seconds of each hook's own arithmetic


def test_auto_compresses_a_large_bucket_on_a_slow_link():
    slow = Link.parse("1gbit,100us")
    (pick,) = auto.choose([(LAYER, 4)], 8, slow, [COSTS])
    # none: 2*7*100us + 2*7/8 * 4.2 MB / 125 MB/s = 60 ms; PowerSGD rank 1 sends 8 KB twice
    assert pick["choice"] == "powersgd:1"
    assert pick["ms"]["none"] == pytest.approx(60.2, rel=1e-2)
    assert pick["ms"]["powersgd:1"] < 10 < pick["ms"]["bf16"] < pick["ms"]["none"]
    # without PowerSGD, bf16's 3/4 of the bytes still pays for its rounding on this link
    (pick,) = auto.choose([(LAYER, 4)], 8, slow, [{"bf16": 2e-3}])
    assert pick["choice"] == "bf16"


def test_auto_keeps_none_on_shared_memory():
    shm = Link(alpha=10e-6, beta=1 / 10e9)          # what calibrate measures here: ~10 GB/s
    picks = auto.choose([(LAYER, 4), ([(64, 16), (64,)], 4)], 2, shm, [COSTS, COSTS])
    assert [p["choice"] for p in picks] == ["none", "none"]


def test_auto_takes_none_on_a_near_tie_a_bad_fit_or_one_rank():
    slow = Link.parse("1gbit,100us")
    none_ms = auto.choose([(LAYER, 4)], 8, slow, [{}])[0]["ms"]["none"]
    bf16_comm = auto.choose([(LAYER, 4)], 8, slow, [{"bf16": 0.0}])[0]["ms"]["bf16"]
    # bf16 predicted 10% faster than none: inside the margin
    near = (0.9 * none_ms - bf16_comm) / 1e3
    assert auto.choose([(LAYER, 4)], 8, slow, [{"bf16": near}])[0]["choice"] == "none"
    for link in (Link(1e-4, float("nan")), Link(1e-4, 0.0), Link(-1.0, 1e-9)):
        assert auto.choose([(LAYER, 4)], 8, link, [COSTS])[0]["choice"] == "none"
    assert auto.choose([(LAYER, 4)], 1, slow, [COSTS])[0]["choice"] == "none"


def test_auto_in_shard_mode_never_takes_bf16():
    """A reduce-scatter (what shard mode needs) of bf16 values is float32 on the wire: no saving."""
    slow = Link.parse("1gbit,100us")
    (pick,) = auto.choose([(LAYER, 4)], 8, slow, [{"bf16": 1e-6}], shard=True)
    assert pick["choice"] == "none"
    assert pick["ms"]["bf16"] > pick["ms"]["none"]
    (pick,) = auto.choose([(LAYER, 4)], 8, slow, [COSTS], shard=True)
    assert pick["choice"] == "powersgd:1"


def test_compute_seconds_times_every_candidate_on_the_buckets_sizes():
    (bucket,) = make_buckets(list(nn.Linear(64, 32).parameters()), 1 << 20)
    costs = auto.compute_seconds(bucket, ["bf16", "powersgd:1"])
    assert set(costs) == {"bf16", "powersgd:1"}
    assert all(0 < v < 1 for v in costs.values())
    assert not bucket.buffer.any()           # measured on a copy: the bucket is untouched


# ---- the dispatching hook's state ---------------------------------------------------------------
def two_buckets():
    layers = [nn.Linear(8, 6), nn.Linear(6, 4)]
    return make_buckets([p for m in layers for p in m.parameters()], 200)


def test_powersgd_counts_rounds_when_its_buckets_come_before_the_last():
    buckets = two_buckets()
    state = BucketCompression(SingleCommunicator(), [b.buffer.size for b in buckets],
                              ["powersgd:1"] + ["none"] * (len(buckets) - 1),
                              start_powerSGD_iter=2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        for b in buckets:
            b.buffer[...] = rng.standard_normal(b.buffer.size)
            bucket_compression_hook(state, GradBucket(b, b.index == len(buckets) - 1)).wait()
    assert state.powersgd[1].iter == 3
    assert 0 in state.powersgd[1].q_memory_dict     # compressed in round 3


def test_error_feedback_is_shared_out_on_another_world_size():
    buckets = two_buckets()
    sizes = [b.buffer.size for b in buckets]
    saved = BucketCompression(SingleCommunicator(), sizes, ["powersgd:2"] * len(sizes),
                              start_powerSGD_iter=2).state_dict()
    rows = np.arange(2 * sizes[0], dtype=np.float32).reshape(2, sizes[0])
    saved["powersgd"]["2"]["error_dict"] = {"0": rows}          # as 2 ranks saved it

    class World:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size
    same = BucketCompression.from_state_dict(World(1, 2), sizes, saved)
    assert np.array_equal(same.powersgd[2].error_dict[0], rows[1])
    other = BucketCompression.from_state_dict(World(0, 4), sizes, saved)
    assert np.array_equal(other.powersgd[2].error_dict[0], rows.sum(axis=0) / 4)
    with pytest.raises(UsageError, match="dist.bucket_mb"):
        BucketCompression.from_state_dict(World(0, 2), sizes[:1], saved)


def test_check_same_parameters_names_the_rank_that_differs():
    model = nn.Linear(3, 2)

    class TwoRanks:
        rank, size = 0, 2

        def __init__(self, theirs):
            self.theirs = theirs

        def allgather(self, mine):
            return np.stack([mine, self.theirs(mine)])
    digest = check_same_parameters(model, TwoRanks(lambda mine: mine))
    assert len(digest) == 64
    with pytest.raises(RuntimeError, match="rank 1's parameters after training differ"):
        check_same_parameters(model, TwoRanks(lambda mine: mine[::-1]), "parameters after training")


def test_powersgd_starts_at_a_tenth_of_the_run():
    assert [start_iter(n) for n in (6, 100, 10_000)] == [2, 10, 1000]
    assert start_iter(100, warmup_steps=30) == 30
    assert parse("powersgd:4") == ("powersgd", 4) and parse("bf16") == ("bf16", None)
