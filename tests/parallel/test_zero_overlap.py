"""ZeroRedundancyOptimizer.overlap_allgather: the parameter all-gather started after step() and
waited for per submodule by forward pre-hooks gives the same bits as the blocking all-gather, on
every rank (float64, 2 ranks, several buckets), and the blocked time is counted as exposed."""
import numpy as np

import distbp
from distbp import comm as C
from distbp import nn, optim
from distbp.parallel.ddp import DistributedDataParallel
from distbp.parallel.zero import ZeroRedundancyOptimizer


def _worker(rank, overlap_first):
    comm = C.init("local", timeout=60)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 4, 8)
    mine = slice(4 * comm.rank, 4 * comm.rank + 4)

    def build(overlap):
        distbp.manual_seed(5)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                              nn.Linear(16, 4)).double()
        ddp = DistributedDataParallel(model, comm=comm, bucket_cap_mb=0.0015, grad_reduction="sum")
        zero = ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, lr=0.05)
        if overlap:
            zero.overlap_allgather(model)
        return model, ddp, zero

    runs = [build(overlap_first), build(not overlap_first)]
    stale = False
    for step in range(4):
        for model, ddp, zero in runs:
            zero.zero_grad()
            out = ddp(distbp.from_numpy(x[mine]))
            (nn.functional.cross_entropy(out, distbp.from_numpy(y[mine]), reduction="sum") / 8).backward()
            zero.step()
            if zero._pending and step == 0:
                stale = stale or len(zero._pending) == len(zero.segments)
    (model_o, ddp_o, zero_o), (model_b, _, zero_b) = runs if overlap_first else runs[::-1]
    pending = len(zero_o._pending)
    zero_o.wait_parameters()
    bits = [np.concatenate([p.data.ravel() for p in m.parameters()]).view(np.uint64)
            for m in (model_o, model_b)]
    return {"same": bool(np.array_equal(bits[0], bits[1])), "pending": pending,
            "segments": len(zero_o.segments), "hooks": len(zero_o._hooks), "stale": stale,
            "exposed": ddp_o.reducer.stats["exposed_seconds"],
            "waited": zero_o.allgather_seconds,
            "across": comm.allgather(bits[0]).tolist()}


def test_overlapped_allgather_gives_the_blocking_bits_on_every_rank():
    for first in (True, False):      # either model's collectives first on the shared communicator
        r0, r1 = C.spawn(_worker, args=(first,), nprocs=2, timeout=120)
        for r in (r0, r1):
            assert r["same"], "overlapped all-gather changed the parameters"
            assert r["segments"] >= 3 and r["hooks"] == 3
            assert r["pending"] == r["segments"]      # deferred: still in flight after step()
            assert r["stale"]
            assert r["waited"] > 0 and r["exposed"] >= r["waited"]
            assert r["across"][0] == r["across"][1], "ranks hold different parameter bits"


def test_overlap_refuses_a_module_without_the_parameters():
    distbp.manual_seed(0)
    a, b = nn.Linear(3, 2).double(), nn.Linear(3, 2).double()
    zero = ZeroRedundancyOptimizer(a.parameters(), optim.SGD, process_group=C.init("single"), lr=0.1)
    try:
        zero.overlap_allgather(b)
    except ValueError as e:
        assert "segment" in str(e)
    else:
        raise AssertionError("overlap_allgather accepted a module without the parameters")
