"""The parameter server's arithmetic without Ray: shards, state split/join, and the server class
driven by asyncio the way Ray drives an async actor, against the local optimizer."""
import asyncio

import numpy as np
import pytest

from distbp import optim
from distbp.ray.server import ParameterServer
from distbp.ray.shards import join_state, pieces, shard_ranges, split_state
from distbp.train.config import load_config

SIZES = [6, 1, 10, 3]
SHAPES = [(2, 3), (1,), (5, 2), (3,)]


def test_shards_are_balanced_and_cover_everything():
    for k in (1, 2, 3, 7):
        ranges = shard_ranges(SIZES, k)
        assert ranges[0][0] == 0 and ranges[-1][1] == sum(SIZES)
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert max(hi - lo for lo, hi in ranges) - min(hi - lo for lo, hi in ranges) <= 1
    assert pieces(SIZES, 4, 12) == [(0, 4, 6), (1, 0, 1), (2, 0, 5)]
    with pytest.raises(ValueError, match="ps_shards=30"):
        shard_ranges(SIZES, 30)


def test_state_split_and_join_round_trip():
    rng = np.random.default_rng(0)
    state = {i: {"step": 4, "exp_avg": rng.normal(size=s)} for i, s in enumerate(SHAPES)}
    all_pieces = [pieces(SIZES, lo, hi) for lo, hi in shard_ranges(SIZES, 3)]
    back = join_state(SHAPES, all_pieces, [split_state(state, p) for p in all_pieces])
    assert back.keys() == state.keys()
    for i in state:
        assert back[i]["step"] == 4
        np.testing.assert_array_equal(back[i]["exp_avg"], state[i]["exp_avg"])


class _Handle:
    """What a Ray actor handle offers the servers here: `peer.norm.remote(...)`, not awaited."""

    def __init__(self, server):
        self.norm = self
        self.server = server

    def remote(self, *args):
        return asyncio.ensure_future(self.server.norm(*args))


class _P:
    def __init__(self, data):
        self.data, self.grad = data, None


@pytest.mark.parametrize("shards", [1, 3])
def test_servers_sum_workers_and_step_like_the_local_optimizer(shards):
    cfg = load_config(None, ["optim.name=adamw", "optim.lr=0.1", "optim.weight_decay=0.1",
                             "optim.schedule=constant"])
    rng = np.random.default_rng(1)
    init = [rng.normal(size=s) for s in SHAPES]
    ref = [_P(a.copy()) for a in init]
    opt = optim.AdamW(ref, lr=0.1, betas=(0.9, 0.999), weight_decay=0.1)
    flat = np.concatenate([a.ravel() for a in init])
    ranges = shard_ranges(SIZES, shards)

    async def run():
        servers = [ParameterServer(k, cfg, 2) for k in range(shards)]
        for s, (lo, hi) in zip(servers, ranges):
            pcs = pieces(SIZES, lo, hi)
            await s.load(pcs, flat[lo:hi], [{}] * len(pcs), None, None, 10)
            await s.set_peers([_Handle(x) for x in servers])
        for step in range(3):
            grads = [rng.normal(size=flat.size) for _ in range(2)]
            answers = await asyncio.gather(*[s.push(step, w, grads[w][lo:hi])
                                             for w in (1, 0) for s, (lo, hi) in zip(servers, ranges)])
            total = grads[0] + grads[1]
            for sq, bad, _ in answers:          # every shard answers with the global norm
                assert sq == pytest.approx(float(total @ total)) and bad is None
            off = 0
            for p in ref:
                p.grad = total[off:off + p.data.size].reshape(p.data.shape)
                off += p.data.size
            opt.step()
        return np.concatenate([s.flat for s in servers])

    got = asyncio.run(run())
    np.testing.assert_array_equal(got, np.concatenate([p.data.ravel() for p in ref]))


def test_a_worker_that_stops_pushing_is_named_after_the_timeout():
    """Worker 0 pushes step 0, worker 1 never does: worker 0's push fails after dist.timeout
    naming worker 1, instead of waiting forever."""
    cfg = load_config(None, ["dist.timeout=0.3"])
    flat = np.zeros(sum(SIZES))

    async def run():
        server = ParameterServer(0, cfg, 2)
        pcs = pieces(SIZES, 0, flat.size)
        await server.load(pcs, flat, [{}] * len(pcs), None, None, 10)
        await server.set_peers([_Handle(server)])
        await server.push(0, 0, np.ones(flat.size))

    with pytest.raises(TimeoutError, match=r"step 0: no gradient from worker\(s\) \[1\] after "
                                           r"dist.timeout=0.3s"):
        asyncio.run(run())
