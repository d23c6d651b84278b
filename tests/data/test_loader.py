import numpy as np
import pytest

from distbp.data import (ArrayDataset, DistributedLoader, EvalLoader, ParquetDataset, build_augment,
                         split_sizes)
from distbp.data.parquet import write_table
from distbp.errors import UsageError


def array_dataset(n=300, shape=(1, 10), seed=0):
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.normal(size=(n, *shape)).astype(np.float32), rng.integers(0, 3, n))


def loaders(ds, B, world_size, **kw):
    return [DistributedLoader(ds, B, r, world_size, **kw) for r in range(world_size)]


def test_uneven_split_43_43_42():
    ds = array_dataset(400)
    loader = DistributedLoader(ds, 128, 0, 3)
    assert loader.batch_sizes() == [43, 43, 42] and split_sizes(128, 3) == [43, 43, 42]
    assert [DistributedLoader(ds, 128, r, 3).batch(0).x.shape[0] for r in range(3)] == [43, 43, 42]
    assert loader.local_batch_size(2) == 42 and loader.steps_per_epoch == 3


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_ranks_are_disjoint_and_cover_each_global_batch(world_size):
    ds = array_dataset(100)
    B = 30
    ranks = loaders(ds, B, world_size, seed=5)
    seen_per_epoch = {}
    for step in range(3 * 3 + 2):  # 3 steps per epoch (10 rows dropped), several epochs
        parts = [r.batch(step) for r in ranks]
        union = np.concatenate([p.indices for p in parts])
        np.testing.assert_array_equal(union, ranks[0].global_indices(step))  # in order, no overlap
        assert len(set(union.tolist())) == B and parts[0].epoch == step // 3
        seen_per_epoch.setdefault(parts[0].epoch, []).extend(union.tolist())
        for p in parts:
            np.testing.assert_array_equal(p.x, ds.x[p.indices])
            assert p.global_size == B and p.step == step
    for epoch, seen in seen_per_epoch.items():
        assert len(seen) == len(set(seen))  # no sample twice within an epoch
    assert seen_per_epoch[0] != seen_per_epoch[1]  # reshuffled every epoch


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_batches_do_not_depend_on_world_size_even_augmented(world_size):
    ds = array_dataset(200)
    aug = build_augment([{"shift": 3}, {"noise": 0.1}, "flip"])
    single = DistributedLoader(ds, 50, 0, 1, seed=9, augment=aug)
    ranks = loaders(ds, 50, world_size, seed=9, augment=aug)
    for step in (0, 3, 4, 9):
        ref = single.batch(step)
        parts = [r.batch(step) for r in ranks]
        np.testing.assert_array_equal(np.concatenate([p.indices for p in parts]), ref.indices)
        np.testing.assert_array_equal(np.concatenate([p.x for p in parts]), ref.x)
        np.testing.assert_array_equal(np.concatenate([p.y for p in parts]), ref.y)
    assert not np.array_equal(ref.x, ds.x[ref.indices])  # the augmentation did something


def test_order_depends_on_seed_and_epoch_only():
    ds = array_dataset(100)
    a = DistributedLoader(ds, 20, 0, 1, seed=1)
    np.testing.assert_array_equal(a.permutation(2), np.random.default_rng([1, 2]).permutation(100))
    assert not np.array_equal(a.batch(0).indices, DistributedLoader(ds, 20, 0, 1, seed=2).batch(0).indices)
    np.testing.assert_array_equal(DistributedLoader(ds, 20, 0, 1, shuffle=False).batch(1).indices,
                                  np.arange(20, 40))


def test_resume_from_start_step_equals_continuing():
    ds = array_dataset(100)
    aug = build_augment({"noise": 0.2})
    first = DistributedLoader(ds, 32, 1, 2, seed=3, augment=aug)
    it = iter(first)
    for _ in range(4):
        next(it)
    state = first.state_dict()
    assert state == {"step": 4}
    rest = [next(it) for _ in range(5)]  # crosses an epoch boundary (3 steps per epoch)
    resumed = DistributedLoader(ds, 32, 1, 2, seed=3, augment=aug, start_step=state["step"])
    again = DistributedLoader(ds, 32, 1, 2, seed=3, augment=aug)
    again.load_state_dict(state)
    for loader in (resumed, again):
        for want, got in zip(rest, iter(loader)):
            assert got.step == want.step and got.epoch == want.epoch
            np.testing.assert_array_equal(got.indices, want.indices)
            np.testing.assert_array_equal(got.x, want.x)


def test_drop_last_false_keeps_the_tail():
    ds = array_dataset(70)
    ranks = loaders(ds, 32, 3, drop_last=False)
    assert ranks[0].steps_per_epoch == 3
    tail = [r.batch(2) for r in ranks]
    assert [len(t) for t in tail] == [2, 2, 2] and tail[0].global_size == 6
    epoch = np.concatenate([r.batch(s).indices for s in range(3) for r in ranks])
    assert sorted(epoch.tolist()) == list(range(70))


def test_micro_batches_split_the_rows():
    batch = DistributedLoader(array_dataset(100), 43, 0, 1).batch(0)
    micro = batch.split(4)
    assert [len(m) for m in micro] == [11, 11, 11, 10]
    np.testing.assert_array_equal(np.concatenate([m.x for m in micro]), batch.x)
    assert all(m.step == 0 and m.global_size == 43 for m in micro)


def test_each_rank_reads_only_its_rows_row_groups(tmp_path):
    rng = np.random.default_rng(0)
    write_table(tmp_path / "d.parquet", {"features": rng.normal(size=(512, 4)),
                                         "label": rng.integers(0, 2, 512)}, row_group_size=16)
    for rank in range(4):
        ds = ParquetDataset(tmp_path / "d.parquet")
        batch = DistributedLoader(ds, 16, rank, 4, seed=0).batch(0)
        assert ds.row_groups_read == len(np.unique(ds.row_groups_of(batch.indices))) <= 4
        assert ds.row_groups_read < ds.num_row_groups


def test_bad_sizes():
    ds = array_dataset(100)
    with pytest.raises(UsageError, match="global batch size 3 is smaller than world size 4"):
        DistributedLoader(ds, 3, 0, 4)
    with pytest.raises(UsageError, match="has 100 samples, fewer than one global batch of 128"):
        DistributedLoader(ds, 128, 0, 2)
    with pytest.raises(UsageError, match=r"rank must be in \[0, 2\), got 2"):
        DistributedLoader(ds, 16, 2, 2)
    with pytest.raises(UsageError, match="loader state has no 'step' key"):
        DistributedLoader(ds, 16).load_state_dict({"epoch": 1})


# -- evaluation ------------------------------------------------------------------------------

@pytest.mark.parametrize("n,world_size,batch_size", [(100, 3, 16), (7, 4, 2), (3, 4, 8), (64, 1, 64)])
def test_eval_covers_every_sample_once_in_lockstep(n, world_size, batch_size):
    ds = array_dataset(n)
    evals = [EvalLoader(ds, batch_size, r, world_size) for r in range(world_size)]
    assert len({len(e) for e in evals}) == 1  # the same number of batches on every rank
    batches = [list(e) for e in evals]
    assert all(len(b) == len(evals[0]) for b in batches)
    seen = np.concatenate([b.indices for bs in batches for b in bs])
    np.testing.assert_array_equal(seen, np.arange(n))  # contiguous shards, in order, none dropped
    assert all(len(b) <= batch_size for bs in batches for b in bs)
    xs = np.concatenate([x for r in range(world_size) for x, _ in ds.shard_batches(r, world_size,
                                                                                   batch_size)])
    np.testing.assert_array_equal(xs, ds.x)


def test_eval_rank_reads_only_its_shard(tmp_path):
    rng = np.random.default_rng(0)
    write_table(tmp_path / "t.parquet", {"features": rng.normal(size=(256, 4)),
                                         "label": rng.integers(0, 2, 256)}, row_group_size=32)
    for rank in range(4):  # shard r is rows [64 r, 64 r + 64): row groups 2r and 2r + 1
        ds = ParquetDataset(tmp_path / "t.parquet")
        list(EvalLoader(ds, 16, rank, 4))
        assert sorted(ds._cache) == [2 * rank, 2 * rank + 1] and ds.row_groups_read == 2
