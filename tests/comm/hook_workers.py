"""Worker functions for the comm hook tests (spawned functions must be importable)."""
import types

import numpy as np

import distbp.comm
from distbp.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
from distbp.parallel.comm_hooks import GradBucket
from tests.comm import hook_cases


def bucket(flat, index=0, is_last=True):
    """A GradBucket over `flat`, laid out as hook_cases.SHAPES (what the reducer hands a hook)."""
    b = types.SimpleNamespace(index=index, buffer=flat, slots=hook_cases.views(flat), params=[])
    return GradBucket(b, is_last)


def make_hook(comm, name):
    hook_name, _, kwargs = hook_cases.CASES[name]
    if kwargs is None:
        return getattr(default_hooks, hook_name), comm
    return powerSGD_hook.powerSGD_hook, powerSGD_hook.PowerSGDState(comm, **kwargs)


def run_cases(rank, names, weights=None, is_last=True):
    """Every case on the hook_cases gradients, each rank's buffer pre-weighted by weights[rank]
    (default 1/world: torch's equal shares). -> {"case/step": result} of this rank."""
    comm = distbp.comm.init("local")
    w = (weights or [1 / comm.size] * comm.size)[comm.rank]
    out = {}
    for name in names:
        hook, state = make_hook(comm, name)
        for step in range(hook_cases.STEPS):
            flat = hook_cases.gradients(comm.rank, step, hook_cases.CASES[name][1]) * w
            result = hook(state, bucket(flat, is_last=is_last)).wait()
            assert result is flat or result.size == flat.size
            out[f"{name}/{step}"] = np.array(result, copy=True)
    return out


def powersgd_resume(rank, split, steps, kwargs):
    """Run `steps` PowerSGD steps straight, and again with the state saved after `split` steps and
    loaded into a fresh PowerSGDState (a resumed run). -> (straight results, resumed results)."""
    comm = distbp.comm.init("local")
    runs = []
    for resume in (False, True):
        state = powerSGD_hook.PowerSGDState(comm, **kwargs)
        results = []
        for step in range(steps):
            if resume and step == split:
                saved = state.state_dict()
                state = powerSGD_hook.PowerSGDState(comm, **kwargs)
                state.load_state_dict(saved)
            flat = hook_cases.gradients(comm.rank, step, "float32") / comm.size
            results.append(powerSGD_hook.powerSGD_hook(state, bucket(flat)).wait().copy())
        runs.append(results)
    return runs


def two_buckets_async(rank, name):
    """Two buckets, the first launched async before the second (as the reducer does), waited in
    order: the collectives must pair up across ranks. -> the two results."""
    comm = distbp.comm.init("local")
    hook, state = make_hook(comm, name)
    flats = [hook_cases.gradients(comm.rank, s, hook_cases.CASES[name][1]) / comm.size
             for s in (0, 1)]
    if state is not comm:
        state.start_powerSGD_iter = 0       # compress at once (the check is for >= 2 only at init)
    futs = [hook(state, bucket(f, index=i, is_last=i == 1)) for i, f in enumerate(flats)]
    return [f.wait().copy() for f in futs]


def ddp_powersgd(rank, steps, hook_name):
    """A small MLP under DDP with a registered hook, trained `steps` SGD steps on this rank's
    data. -> its parameters (identical on every rank if the hook hands every rank the same bits)."""
    import distbp
    import distbp.nn as nn
    from distbp.nn.parallel import DistributedDataParallel
    comm = distbp.comm.init("local")
    distbp.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(),
                          nn.Linear(24, 3))
    ddp = DistributedDataParallel(model, process_group=comm, bucket_cap_mb=0.002)
    if hook_name == "powerSGD":
        state = powerSGD_hook.PowerSGDState(comm, matrix_approximation_rank=1,
                                            start_powerSGD_iter=2)
        ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    else:
        ddp.register_comm_hook(comm, getattr(default_hooks, hook_name))
    opt = distbp.optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(comm.rank)
    for _ in range(steps):
        x = rng.standard_normal((8 + 4 * comm.rank, 12)).astype(np.float32)   # uneven shares
        y = rng.integers(0, 3, len(x))
        loss = nn.functional.cross_entropy(ddp(distbp.tensor(x)), distbp.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.data.copy() for p in model.parameters()]
