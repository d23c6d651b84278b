"""Your own model and data, trained data-parallel the torch.distributed way.

    python examples/ddp_own_model.py                                  # one process
    distbp run --nproc-per-node 2 examples/ddp_own_model.py --epochs 5
    mpiexec -n 2 python examples/ddp_own_model.py --epochs 5
    distbp run --backend ray --nproc-per-node 2 examples/ddp_own_model.py --epochs 5

A PyTorch script ported by changing imports (torch -> distbp, torch.distributed -> distbp.distributed,
torch.utils.data -> distbp.utils.data): the model is an MLP on two interleaved spirals made here.
"""
import argparse

import numpy as np

import distbp
import distbp.distributed as dist
import distbp.nn as nn
import distbp.nn.functional as F
from distbp.nn.parallel import DistributedDataParallel as DDP
from distbp.utils.data import DataLoader, TensorDataset
from distbp.utils.data.distributed import DistributedSampler

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=64, help="per rank")
parser.add_argument("--lr", type=float, default=0.01)
args = parser.parse_args()


class SpiralNet(nn.Module):
    def __init__(self, hidden=64, classes=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)                                            # (B, classes)


def spirals(n, seed):
    """n points (x, y) on two interleaved spirals, label = which spiral; the same on every rank."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 3.5 * np.pi, n)
    label = rng.integers(0, 2, n)
    r = t / (3.5 * np.pi)
    xy = np.stack([r * np.cos(t + np.pi * label), r * np.sin(t + np.pi * label)], 1)
    return (xy + rng.normal(0, 0.02, xy.shape)).astype(np.float32), label


dist.init_process_group()
rank, world_size = dist.get_rank(), dist.get_world_size()
is_main = rank == 0

train_set = TensorDataset(*spirals(4096, seed=0))
test_x, test_y = spirals(1024, seed=1)
sampler = DistributedSampler(train_set, shuffle=True, seed=0)        # this rank's share
loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)

distbp.manual_seed(0)
model = DDP(SpiralNet())                  # parameters broadcast from rank 0, gradients averaged
optimizer = distbp.optim.AdamW(model.parameters(), lr=args.lr)

for epoch in range(args.epochs):
    sampler.set_epoch(epoch)
    totals = np.zeros(2)                                              # [loss * n, n]
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)                           # mean over this rank's batch
        loss.backward()                                               # returns reduced gradients
        optimizer.step()
        totals += [loss.item() * len(y), len(y)]
    dist.all_reduce(totals)                                           # sums over every rank
    with distbp.no_grad():
        accuracy = (model(distbp.tensor(test_x)).data.argmax(1) == test_y).mean()
    if is_main:
        print(f"epoch {epoch}: train loss {totals[0] / totals[1]:.4f}, test accuracy "
              f"{accuracy:.3f}", flush=True)

dist.destroy_process_group()
