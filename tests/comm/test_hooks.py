"""The comm hooks' behaviour: bfloat16 rounding, determinism across ranks, uneven shares, PowerSGD
resumed from its state_dict, async buckets, and under DDP. (torch's numbers: test_hooks_torch.py.)"""
import pickle

import numpy as np
import pytest

from distbp.comm import spawn
from distbp.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
from tests.comm import hook_cases, hook_workers


def test_importable_as_in_torch():
    from distbp.distributed.algorithms.ddp_comm_hooks.default_hooks import (  # noqa: F401
        allreduce_hook, bf16_compress_hook, fp16_compress_hook)
    from distbp.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import (  # noqa: F401
        PowerSGDState, powerSGD_hook)


def test_bfloat16_rounding_is_torchs():
    torch = pytest.importorskip("torch")
    f32 = np.float32
    special = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38,
                        1e-40, -1e-45, 1.17549435e-38], f32)
    ties = (np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x3F807FFF, 0x3F808001], np.uint32)
            .view(f32))                             # halfway to even / odd, just below and above
    scale = 10.0 ** np.arange(-40, 40, 8).repeat(1000)
    rand = (np.random.default_rng(0).standard_normal(10_000) * scale).astype(f32)
    for x in (special, ties, rand):
        theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        mine = default_hooks.to_bfloat16_bits(x)
        nan = np.isnan(x)       # torch's vectorised cast writes 0xFFFF, its scalar one 0x7FC0
        np.testing.assert_array_equal(mine[~nan], theirs[~nan])
        assert (mine[nan] == 0x7FC0).all()
        back = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
        np.testing.assert_array_equal(default_hooks.from_bfloat16_bits(mine), back)


def test_three_ranks_same_bits_and_uneven_shares():
    """3 ranks with shares 1/2, 1/3, 1/6: the plain hook sums the weighted contributions exactly
    as a float64 sum rounds, the compressed ones close to it; every rank holds the same bits."""
    weights = [1 / 2, 1 / 3, 1 / 6]
    names = ["allreduce", "fp16", "bf16", "powerSGD_r1", "powerSGD_r2_cold"]
    res = spawn(hook_workers.run_cases, nprocs=3, args=(names, weights), timeout=60)
    for step in range(hook_cases.STEPS):
        want = sum(w * hook_cases.gradients(r, step, "float64") for r, w in enumerate(weights))
        for name in names:
            for r in (1, 2):
                np.testing.assert_array_equal(res[r][f"{name}/{step}"], res[0][f"{name}/{step}"])
        got = {n: res[0][f"{n}/{step}"] for n in names}
        np.testing.assert_allclose(got["allreduce"], want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got["fp16"], want, rtol=3e-3, atol=3e-3)
        np.testing.assert_allclose(got["bf16"], want, rtol=2e-2, atol=2e-2)


def test_powersgd_resumed_from_state_dict_continues_exactly():
    kwargs = dict(matrix_approximation_rank=2, start_powerSGD_iter=2)
    for straight, resumed in spawn(hook_workers.powersgd_resume, nprocs=2, args=(4, 7, kwargs)):
        for a, b in zip(straight, resumed):
            np.testing.assert_array_equal(a, b)


def test_powersgd_state_dict_round_trips_through_pickle_and_npz(tmp_path):
    state = powerSGD_hook.PowerSGDState(None, start_powerSGD_iter=2, random_seed=5)
    state.rng.randint(10)
    state.error_dict[0] = np.arange(4.0)
    state.q_memory_dict[0] = np.ones(3)
    sd = state.state_dict()
    again = pickle.loads(pickle.dumps(state))
    assert again.process_group is None and again.rng.randint(1 << 30) == state.rng.randint(1 << 30)
    fresh = powerSGD_hook.PowerSGDState(None, start_powerSGD_iter=2)
    fresh.load_state_dict(sd)
    expected = powerSGD_hook.PowerSGDState(None, start_powerSGD_iter=2, random_seed=5).rng
    expected.randint(10)
    assert fresh.rng.randint(1 << 30) == expected.randint(1 << 30)
    np.testing.assert_array_equal(fresh.error_dict[0], sd["error_dict"][0])


def test_powersgd_state_checks_its_arguments():
    with pytest.raises(ValueError, match="start_powerSGD_iter"):
        powerSGD_hook.PowerSGDState(None, start_powerSGD_iter=1)
    with pytest.raises(ValueError, match="matrix_approximation_rank"):
        powerSGD_hook.PowerSGDState(None, matrix_approximation_rank=0)


def test_zero_gradient_orthogonalizes_to_zeros_not_nan():
    m = np.zeros((1, 6, 2))
    powerSGD_hook._orthogonalize(m)
    assert not np.isnan(m).any() and not m.any()
    m = np.random.default_rng(0).standard_normal((3, 6, 2))
    powerSGD_hook._orthogonalize(m)
    np.testing.assert_allclose(m.transpose(0, 2, 1) @ m, np.broadcast_to(np.eye(2), (3, 2, 2)),
                               atol=1e-12)


@pytest.mark.parametrize("name", ["fp16", "bf16", "powerSGD_r1"])
def test_async_buckets_pair_up_across_ranks(name):
    a, b = spawn(hook_workers.two_buckets_async, nprocs=2, args=(name,), timeout=60)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_default_group_is_required_when_process_group_is_none():
    flat = hook_cases.gradients(0, 0, "float32")
    with pytest.raises(RuntimeError, match="init_process_group"):
        default_hooks.fp16_compress_hook(None, hook_workers.bucket(flat))


def test_bf16_hook_refuses_other_dtypes():
    import distbp.comm
    comm = distbp.comm.init("single")
    with pytest.raises(TypeError, match="bucket 0 holds float64"):
        default_hooks.bf16_compress_hook(comm, hook_workers.bucket(hook_cases.gradients(0, 0, "float64")))


@pytest.mark.parametrize("hook", ["powerSGD", "bf16_compress_hook"])
def test_under_ddp_every_rank_keeps_the_same_parameters(hook):
    ranks = spawn(hook_workers.ddp_powersgd, nprocs=2, args=(4, hook), timeout=60)
    for p, q in zip(*ranks):
        np.testing.assert_array_equal(p, q)
