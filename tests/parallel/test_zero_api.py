"""ZeroRedundancyOptimizer with torch's signature, no buckets in sight: on one process, without a
DDP (gradients whole on every rank) and under a DDP averaging uneven shards, it ends where a plain
optimizer ends, with the plain optimizer's state_dict, and leaves a gradient-less parameter alone."""
import numpy as np

import distbp
from distbp import comm as C
from distbp import nn, optim
from distbp.nn import functional as F
from distbp.nn.parallel import DistributedDataParallel as DDP
from distbp.parallel import ZeroRedundancyOptimizer


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        distbp.manual_seed(2)
        self.l1, self.l2 = nn.Linear(5, 7), nn.Linear(7, 3)
        self.unused = nn.Linear(2, 2)
        self.double()

    def forward(self, x):
        return self.l2(distbp.tanh(self.l1(x)))


def batch(n=24):
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


def train(model, opt, steps, xs, ys, module=None):
    for _ in range(steps):
        F.cross_entropy((module or model)(distbp.from_numpy(xs)), distbp.from_numpy(ys)).backward()
        opt.step()
        opt.zero_grad()


def plain_run(steps=3):
    model = Net()
    opt = optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    train(model, opt, steps, *batch())
    return model, opt.state_dict()


def same_state(a, b):
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            assert np.array_equal(v, b["state"][i][k]), (i, k)
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"]


def bits(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()]).view(np.uint64).tolist()


def test_one_process_is_the_plain_optimizer():
    ref, ref_state = plain_run()
    model = Net()
    opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.AdamW,
                                  process_group=C.init("single"), lr=0.05, weight_decay=0.1)
    before = model.unused.weight.data.copy()
    train(model, opt, 3, *batch())
    assert bits(model) == bits(ref)
    assert np.array_equal(model.unused.weight.data, before)      # no grad: left alone
    same_state(opt.state_dict(), ref_state)                      # no state for `unused`
    assert 4 not in opt.state_dict()["state"]


def _worker(rank, with_ddp):
    comm = C.init("local", timeout=60)
    x, y = batch()
    model = Net()
    if with_ddp:        # uneven shards (15 / 9), the mean loss, reduce-scatter
        mine = slice(0, 15) if comm.rank == 0 else slice(15, 24)
        ddp = DDP(model, comm=comm, bucket_cap_mb=0.0002)
    opt = ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, process_group=comm, lr=0.05,
                                  weight_decay=0.1)
    if with_ddp:
        assert ddp.reducer.shard
        train(model, opt, 3, x[mine], y[mine], module=ddp)
    else:               # every rank computes the whole gradient itself
        train(model, opt, 3, x, y)
    sd = opt.state_dict()
    held = sum(v.size for s in opt.optim.state.values() for v in s.values()
               if isinstance(v, np.ndarray))
    # a fresh optimizer loading the state continues like the first one
    opt2 = ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, process_group=comm, lr=0.05,
                                   weight_decay=0.1)
    opt2.load_state_dict(sd)
    same = all(np.array_equal(opt.optim.state[a]["exp_avg"], opt2.optim.state[b]["exp_avg"])
               for a, b in zip(opt.pieces, opt2.pieces) if a in opt.optim.state)
    return {"bits": bits(model), "state": {int(k): {n: (v.tolist() if isinstance(v, np.ndarray)
                                                         else v) for n, v in s.items()}
                                            for k, s in sd["state"].items()},
            "held": int(held), "same": same}


def test_two_ranks_with_and_without_ddp():
    ref, ref_state = plain_run()
    total = 2 * sum(p.data.size for n, p in ref.named_parameters() if not n.startswith("unused"))
    for with_ddp in (False, True):
        r0, r1 = C.spawn(_worker, nprocs=2, args=(with_ddp,), timeout=120)
        assert r0["bits"] == r1["bits"]
        mine = np.array(r0["bits"], np.uint64).view(np.float64)
        want = np.concatenate([p.data.ravel() for p in ref.parameters()])
        assert np.max(np.abs(mine - want)) < 1e-12, with_ddp
        assert r0["held"] + r1["held"] == total and r0["held"] and r1["held"]
        assert r0["same"] and r1["same"]
        for i, s in ref_state["state"].items():
            assert np.max(np.abs(np.array(r0["state"][i]["exp_avg_sq"]) - s["exp_avg_sq"])) < 1e-12
        assert set(r0["state"]) == set(ref_state["state"])
