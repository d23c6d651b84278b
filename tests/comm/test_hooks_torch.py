"""distbp's comm hooks against torch's own (torch.distributed.algorithms.ddp_comm_hooks) on the
same gradients, 2 ranks each: torch's in a gloo group (torch_hooks_oracle.py), distbp's in a local
world. With equal shares their definitions coincide: torch divides each rank's gradient by the world
size inside the hook, distbp's bucket arrives multiplied by 1/world (pre-weighted)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from distbp.comm import spawn
from tests.comm import hook_cases, hook_workers

torch = pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle") / "torch.npz"
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "tests.comm.torch_hooks_oracle", str(out)], env=env,
                   check=True, timeout=240, cwd=ROOT)
    return dict(np.load(out))


@pytest.fixture(scope="module")
def ours():
    return spawn(hook_workers.run_cases, nprocs=hook_cases.WORLD, args=(list(hook_cases.CASES),),
                 timeout=60)


@pytest.mark.parametrize("name", ["allreduce", "fp16", "bf16"])
def test_default_hooks_give_torchs_bits(oracle, ours, name):
    for step in range(hook_cases.STEPS):
        for rank in range(hook_cases.WORLD):
            theirs = oracle[f"{name}/{step}/{rank}"]
            mine = ours[rank][f"{name}/{step}"]
            assert mine.dtype == theirs.dtype
            np.testing.assert_array_equal(mine, theirs, err_msg=f"{name} step {step} rank {rank}")


@pytest.mark.parametrize("name", ["powerSGD_r1", "powerSGD_r2_cold", "powerSGD_r4"])
def test_powersgd_matches_torch(oracle, ours, name):
    """Plain all-reduce before start_powerSGD_iter, then PowerSGD with warm start and error
    feedback (or without both): torch's numbers to float64 rounding (matmul orders differ)."""
    start = hook_cases.CASES[name][2]["start_powerSGD_iter"]
    for step in range(hook_cases.STEPS):
        for rank in range(hook_cases.WORLD):
            theirs = oracle[f"{name}/{step}/{rank}"]
            mine = ours[rank][f"{name}/{step}"]
            np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-11,
                                       err_msg=f"{name} step {step} rank {rank}")
        exact = hook_cases.gradients(0, step, "float64") + hook_cases.gradients(1, step, "float64")
        if step >= start:   # compressed: not the exact mean any more
            assert not np.allclose(mine, exact / 2)


def test_every_rank_ends_with_the_same_bits(ours):
    for name in hook_cases.CASES:
        for step in range(hook_cases.STEPS):
            np.testing.assert_array_equal(ours[0][f"{name}/{step}"], ours[1][f"{name}/{step}"],
                                          err_msg=f"{name} step {step}")
