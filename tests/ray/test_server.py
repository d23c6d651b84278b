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


class _Peer(_Handle):
    """A peer handle that also carries abort_round (elastic membership)."""

    def __init__(self, server):
        super().__init__(server)
        self.abort_round = _Call(server.abort_round)
        self.missing = _Call(server.missing)


class _Call:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return asyncio.ensure_future(self.fn(*args))


def test_closing_a_generation_aborts_an_undecided_step_on_every_shard():
    """Worker 1 dies after pushing step 1 to shard 0 only: shard 0 has every gradient of the
    step, shard 1 does not. close() makes both refuse the step (none applies it), worker 0's
    pushes answer REGROUP, and the next generation (one worker) goes on from step 1."""
    from distbp.ray.server import REGROUP
    cfg = load_config(None, ["optim.name=sgd", "optim.lr=0.1", "optim.schedule=constant"])
    flat = np.arange(sum(SIZES), dtype=np.float64)
    ranges = shard_ranges(SIZES, 2)

    async def run():
        servers = [ParameterServer(k, cfg, 2) for k in range(2)]
        for s, (lo, hi) in zip(servers, ranges):
            pcs = pieces(SIZES, lo, hi)
            await s.load(pcs, flat[lo:hi], [{}] * len(pcs), None, None, 10)
            await s.set_peers([_Peer(x) for x in servers])
        g = np.ones(flat.size)
        await asyncio.gather(*[s.push(0, w, g[lo:hi]) for w in (0, 1)
                               for s, (lo, hi) in zip(servers, ranges)])
        after0 = np.concatenate([s.flat for s in servers]).copy()
        lo, hi = ranges[0]
        w1 = asyncio.ensure_future(servers[0].push(1, 1, g[lo:hi]))      # then worker 1 dies
        w0 = [asyncio.ensure_future(s.push(1, 0, g[a:b])) for s, (a, b) in zip(servers, ranges)]
        await asyncio.sleep(0.01)
        await asyncio.gather(*[s.close(0) for s in servers])
        answers = await asyncio.gather(w1, *w0)
        assert all(a == REGROUP for a in answers)
        assert np.array_equal(np.concatenate([s.flat for s in servers]), after0)
        positions = [await s.position() for s in servers]
        assert [p["completed"] for p in positions] == [1, 1]
        for s in servers:
            await s.open(1, 1)
        answers = await asyncio.gather(*[s.push(1, 0, g[a:b], 1)
                                         for s, (a, b) in zip(servers, ranges)])
        assert all(a != REGROUP for a in answers)
        assert [(await s.position())["completed"] for s in servers] == [2, 2]
        assert await servers[0].push(2, 0, g[:1], 0) == REGROUP      # an ended generation
        return after0, np.concatenate([s.flat for s in servers])

    after0, after1 = asyncio.run(run())
    # SGD, momentum 0.9: step 0 summed 2 workers' ones (buffer 2), step 1 one worker's
    np.testing.assert_allclose(after1, after0 - 0.1 * (0.9 * 2.0 + 1.0))


@pytest.mark.parametrize("sets, fragment", [
    (["dist.min_workers=3"], "'dist.min_workers' must be <= dist.workers=2, got 3"),
    (["dist.max_workers=1"], "'dist.max_workers' must be >= dist.workers=2, got 1"),
    (["dist.max_workers=40", "train.global_batch_size=32"], "'dist.max_workers' is 40"),
])
def test_elastic_bounds_are_checked_naming_the_key(sets, fragment):
    from distbp.errors import UsageError
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(")):
        load_config(None, sets)


def test_a_gradient_missing_on_another_shard_is_named():
    """Two shards: worker 1 pushed its part to shard 0, then stopped before shard 1. Every
    gradient reached shard 0, so what it lacks is shard 1's norm: worker 0's wait there still
    names worker 1 (asked of shard 1), not an empty list."""
    cfg = load_config(None, ["dist.timeout=0.3"])
    flat = np.zeros(sum(SIZES))
    ranges = shard_ranges(SIZES, 2)

    async def run():
        servers = [ParameterServer(k, cfg, 2) for k in range(2)]
        for s, (lo, hi) in zip(servers, ranges):
            pcs = pieces(SIZES, lo, hi)
            await s.load(pcs, flat[lo:hi], [{}] * len(pcs), None, None, 10)
            await s.set_peers([_Peer(x) for x in servers])
        (lo0, hi0), (lo1, hi1) = ranges
        first = asyncio.ensure_future(servers[0].push(0, 0, np.ones(hi0 - lo0)))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(servers[0].push(0, 1, np.ones(hi0 - lo0))),
                asyncio.ensure_future(servers[1].push(0, 0, np.ones(hi1 - lo1)))]
        try:
            await first
        finally:
            for f in rest:
                f.cancel()

    with pytest.raises(TimeoutError, match=r"step 0: no gradient from worker\(s\) \[1\] after"):
        asyncio.run(run())
