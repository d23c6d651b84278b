"""The sharded optimizer (dist.shard_optimizer, ZeRO-1): each rank updates 1/N of the parameters and
keeps 1/N of the optimizer state, yet training follows the unsharded trajectory, every rank holds the
same bits, and checkpoints move between sharded and unsharded runs of any world size."""
import numpy as np
import pytest

import distbp
from distbp import comm as C
from distbp import nn, optim
from distbp.parallel.ddp import DistributedDataParallel
from distbp.parallel.zero import ZeroRedundancyOptimizer
from distbp.train.checkpoint import load_checkpoint
from tests.parallel.helpers import max_diff, params, train

ADAMW = ["optim.name=adamw", "optim.lr=0.01", "optim.weight_decay=0.01", "optim.schedule=cosine",
         "train.clip_grad_norm=0.5"]


def optimizer_state(out, step):
    _, _, optim_state = load_checkpoint(out / "checkpoints" / f"step_{step:06d}.json")
    return {int(k): v for k, v in optim_state["state"].items()}


def test_sharded_follows_the_unsharded_trajectory_and_checkpoints_interchange(in_tmp):
    plain = train(in_tmp, "plain", ADAMW + ["dist.shard_optimizer=false"], workers=3)
    sharded = train(in_tmp, "sharded", ADAMW, workers=3)
    assert max_diff(params(plain), params(sharded)) < 1e-12
    # the checkpoints hold the same per-parameter optimizer state
    a, b = optimizer_state(plain, 3), optimizer_state(sharded, 3)
    assert a.keys() == b.keys() and len(a) > 0
    for i in a:
        assert a[i]["step"] == b[i]["step"] == 3
        for name in ("exp_avg", "exp_avg_sq"):
            assert a[i][name].shape == b[i][name].shape
            assert np.max(np.abs(a[i][name] - b[i][name])) < 1e-12, (i, name)
    # a sharded run resumes an unsharded run's checkpoint on another world size, and a 1-worker
    # (unsharded) run resumes a sharded run's
    for name, first, workers in (("u", ["dist.shard_optimizer=false"], 2), ("s", [], 1)):
        out = train(in_tmp, name, ADAMW + first, workers=3)
        for f in ("model.npz", "summary.json", "checkpoints/step_000006.json",
                  "checkpoints/step_000006.npz"):
            (out / f).unlink()
        resumed = train(in_tmp, name, ADAMW, workers=workers, extra=["--resume"])
        assert max_diff(params(plain), params(resumed)) < 1e-12, name


def _zero_worker(seed, bucket_mb=0.0002):
    """2 ranks: an MLP under DDP with a sharded AdamW, against a plain AdamW on the whole batch."""
    comm = C.init("local", timeout=60)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)

    def mlp():
        distbp.manual_seed(seed)
        return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()

    model, ref = mlp(), mlp()
    ddp = DistributedDataParallel(model, comm=comm, bucket_cap_mb=bucket_mb, grad_reduction="sum")
    zero = ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, lr=0.05, weight_decay=0.1)
    assert ddp.reducer.shard          # ZeRO found the DDP and switched it to reduce-scatter
    plain = optim.AdamW(ref.parameters(), lr=0.05, weight_decay=0.1)
    mine = slice(4 * comm.rank, 4 * comm.rank + 4)
    for _ in range(3):
        zero.zero_grad()
        (nn.functional.cross_entropy(ddp(distbp.from_numpy(x[mine])), distbp.from_numpy(y[mine]),
                                     reduction="sum") / 8).backward()
        zero.step()
        plain.zero_grad()
        (nn.functional.cross_entropy(ref(distbp.from_numpy(x)), distbp.from_numpy(y),
                                     reduction="sum") / 8).backward()
        plain.step()
    before = [p.data.copy() for p in model.parameters()]
    zero.zero_grad()
    zero.step()          # no gradients: nothing to apply, as for a plain optimizer
    unchanged = all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    held = sum(v.size for s in zero.optim.state.values() for v in s.values()
               if isinstance(v, np.ndarray))
    full = zero.state_dict()
    want = plain.state_dict()
    state_diff = max(float(np.max(np.abs(full["state"][i][k] - want["state"][i][k])))
                     for i in want["state"] for k in ("exp_avg", "exp_avg_sq"))
    # a fresh sharded optimizer loading that state holds the same shard
    zero2 = ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, lr=0.05, weight_decay=0.1)
    zero2.load_state_dict(full)
    same_shard = all(np.array_equal(zero.optim.state[a]["exp_avg_sq"],
                                    zero2.optim.state[b]["exp_avg_sq"])
                     for a, b in zip(zero.pieces, zero2.pieces))
    bits = np.concatenate([p.data.ravel() for p in model.parameters()]).view(np.uint64)
    return {"param_diff": max(float(np.max(np.abs(p.data - q.data)))
                              for p, q in zip(model.parameters(), ref.parameters())),
            "state_diff": state_diff, "held": int(held), "total": 2 * sum(p.data.size for p in ref.parameters()),
            "steps": [full["state"][i]["step"] for i in sorted(full["state"])],
            "pieces": len(zero.pieces),
            "same_shard": same_shard, "unchanged": unchanged, "bits": comm.allgather(bits).tolist(),
            "symmetric": [comm.transport.heap.lookup(b) is not None
                          for b in [x.buffer for x in ddp.reducer.buckets] + ddp.reducer.parameter_buffers()]}


@pytest.mark.parametrize("direct", [False, True])
def test_each_rank_holds_half_the_state_and_the_same_parameters(direct):
    # direct: one bucket, larger than the small-message switch (set to 64 bytes here), so the
    # gradients and parameters move through symmetric memory (symmetric.py), not the ring
    small = dict(small_bytes=64) if direct else {}
    r0, r1 = C.spawn(_zero_worker, 2, args=(4, 0.01 if direct else 0.0002), timeout=120, **small)
    assert all(r0["symmetric"]) and all(r1["symmetric"])  # the buffers come from comm.empty
    for r in (r0, r1):
        assert r["param_diff"] < 1e-12 and r["state_diff"] < 1e-12
        assert r["steps"] == [3, 3, 3, 3] and r["same_shard"] and r["unchanged"]
        assert r["bits"][0] == r["bits"][1], "ranks hold different parameter bits"
    assert r0["held"] + r1["held"] == r0["total"]          # exp_avg + exp_avg_sq, split in two
    assert abs(r0["held"] - r1["held"]) <= 2 * max(r0["pieces"], r1["pieces"])
