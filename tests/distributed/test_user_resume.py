"""Exact resume for a user's own script (not `distbp train`): a DDP loop over the step-addressed
DistributedLoader that saves model and optimizer with distbp.save, stopped and resumed with
distbp.load, ends on the same bits as the run that never stopped; resumed on another number of
workers, at the same parameters to rounding (sample-weighted DDP, the same global batches)."""
import numpy as np

import distbp
import distbp.distributed as dist
import distbp.nn as nn
import distbp.nn.functional as F
from distbp.comm import spawn
from distbp.data import DistributedLoader, as_dataset
from distbp.nn.parallel import DistributedDataParallel as DDP

STEPS, CUT, BATCH = 12, 5, 40         # 40 = 14/13/13 on 3 ranks: uneven shards too


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    return x, (x[:, 0] * x[:, 1] > 0).astype(np.int64)


def script(rank, ckpt, start, stop):
    """The user's script: train steps [start, stop), resuming from `ckpt` if start > 0, and save
    there at stop. Returns the parameters (rank 0) as float64 arrays."""
    dist.init_process_group()
    distbp.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    opt = distbp.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    if start:
        state = distbp.load(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
    ddp = DDP(model)
    loader = DistributedLoader(as_dataset(data()), BATCH, dist.get_rank(), dist.get_world_size(),
                               seed=3, start_step=start)
    for _, batch in zip(range(start, stop), loader):
        opt.zero_grad()
        F.cross_entropy(ddp(distbp.tensor(batch.x)), distbp.tensor(batch.y)).backward()
        opt.step()
    if dist.get_rank() == 0:
        distbp.save({"model": model.state_dict(), "optim": opt.state_dict()}, ckpt)
    dist.barrier()
    dist.destroy_process_group()
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def test_a_resumed_user_script_ends_where_the_straight_run_ends(tmp_path):
    straight = spawn(script, args=(str(tmp_path / "straight.pt"), 0, STEPS), nprocs=2)[0]
    cut = str(tmp_path / "cut.pt")
    spawn(script, args=(cut, 0, CUT), nprocs=2)
    resumed = spawn(script, args=(cut, CUT, STEPS), nprocs=2)[0]
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert np.array_equal(straight[k], resumed[k]), k            # bit for bit

    other = str(tmp_path / "other.pt")
    spawn(script, args=(other, 0, CUT), nprocs=2)
    on_three = spawn(script, args=(other, CUT, STEPS), nprocs=3)[0]   # resumed on 3 workers
    for k in straight:
        assert np.max(np.abs(straight[k] - on_three[k])) < 1e-12, k
