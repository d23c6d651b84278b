"""The oracle for test_hooks_torch.py: torch's own DDP comm hooks on 2 gloo ranks.

    python -m tests.comm.torch_hooks_oracle OUT.npz

Each rank runs every case of hook_cases on the same gradients distbp's test uses and rank 0 writes
every rank's result buffers, keyed "case/step/rank". PowerSGD's random projections: torch.randn
after torch.manual_seed(seed) is replaced (in this process only) by numpy's
RandomState(seed).standard_normal, the definition distbp uses, so both draw the same Q's.
"""
import os
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

from tests.comm import hook_cases


class Bucket:
    """What torch's hooks read of a GradBucket."""

    def __init__(self, flat):
        self._flat = flat

    def buffer(self):
        return self._flat

    def gradients(self):
        return [torch.from_numpy(v) for v in hook_cases.views(self._flat.numpy())]

    def index(self):
        return 0

    def is_last(self):
        return True


def numpy_randn():
    """torch.manual_seed / torch.randn replaced by numpy's RandomState stream."""
    stream = {}
    real_seed = torch.manual_seed

    def manual_seed(seed):
        stream["rs"] = np.random.RandomState(seed)
        return real_seed(seed)

    def randn(*shape, device=None, dtype=None):
        return torch.from_numpy(stream["rs"].standard_normal(shape)).to(dtype)
    torch.manual_seed, torch.randn = manual_seed, randn


def run(rank, init_file, out):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=hook_cases.WORLD)
    numpy_randn()
    results = {}
    for name, (hook_name, dtype, kwargs) in hook_cases.CASES.items():
        if kwargs is None:
            hook, state = getattr(default_hooks, hook_name), None
        else:
            hook, state = powerSGD_hook.powerSGD_hook, powerSGD_hook.PowerSGDState(None, **kwargs)
        for step in range(hook_cases.STEPS):
            flat = torch.from_numpy(hook_cases.gradients(rank, step, dtype))
            results[f"{name}/{step}/{rank}"] = hook(state, Bucket(flat)).wait().numpy().copy()
    gathered = [None] * hook_cases.WORLD
    dist.all_gather_object(gathered, results)
    if rank == 0:
        np.savez(out, **{k: v for r in gathered for k, v in r.items()})
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(run, args=(os.path.join(tmp, "init"), sys.argv[1]), nprocs=hook_cases.WORLD)
