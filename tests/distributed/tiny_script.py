"""A user script for the launcher tests: 6 steps of a small MLP, gradients averaged by all_reduce.

    distbp run --nproc-per-node 2 tests/distributed/tiny_script.py OUT.json
    mpiexec -n 2 python tests/distributed/tiny_script.py OUT.json
    distbp run --backend ray --nproc-per-node 2 tests/distributed/tiny_script.py OUT.json
    ... OUT.json --fail RANK:HOW       # HOW: raise, exit, kill, hang (to test failure naming),
                                       # branch (skips a gradient's all_reduce: mismatched calls)
    ... OUT.json --fail RANK:HOW --fail-attempt 0     # only on the first attempt (--max-restarts)

Rank 0 writes the world facts and the final parameters' bytes (hex) to OUT.json.
"""
import argparse
import json
import os
import signal
import time

import numpy as np

import distbp
import distbp.distributed as dist
import distbp.nn as nn
import distbp.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--fail", default="")
parser.add_argument("--fail-attempt", default=None,
                    help="fail only on this attempt of distbp run --max-restarts")
args = parser.parse_args()

dist.init_process_group()
rank, world = dist.get_rank(), dist.get_world_size()
distbp.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
for p in model.parameters():
    p.data = p.data.astype(np.float64)
    dist.broadcast(p, src=0)
rng = np.random.default_rng(1)
x, y = rng.normal(size=(24, 5)), rng.integers(0, 3, 24)
mine = np.array_split(np.arange(24), world)[rank]
opt = distbp.optim.SGD(model.parameters(), lr=0.1)
fail_rank, _, how = args.fail.partition(":")
for step in range(6):
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if step == 3 and fail_rank == str(rank) and args.fail_attempt in (None, attempt):
        if how == "raise":
            raise ValueError(f"rank {rank} is broken on purpose")
        if how == "exit":
            os._exit(3)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "hang":
            time.sleep(3600)
    opt.zero_grad()
    loss = F.cross_entropy(model(distbp.tensor(x[mine])), y[mine], reduction="sum") / len(x)
    loss.backward()
    skip = step == 3 and fail_rank == str(rank) and how == "branch"
    for i, p in enumerate(model.parameters()):
        if not (skip and i == 0):          # a rank that took another branch
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
    opt.step()
facts = [None] * world
dist.all_gather_object(facts, {"rank": rank, "local_rank": dist.get_local_rank(),
                               "env_rank": os.environ.get("RANK"), "backend": dist.get_backend()})
if rank == 0:
    with open(args.out, "w") as f:
        json.dump({"facts": facts, "params": [p.data.tobytes().hex() for p in model.parameters()]}, f)
dist.destroy_process_group()
