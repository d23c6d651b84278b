"""distbp.utils.data against torch.utils.data (the oracle): the same indices, batches and errors."""
import numpy as np
import pytest
import torch
import torch.utils.data as tud

import distbp
from distbp.utils.data import (BatchSampler, DataLoader, Dataset, DistributedSampler, Subset,
                               TensorDataset, default_collate, random_split)
from distbp.utils.data.sampler import randperm


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full(3, i, np.float32), "y": i * i, "name": f"s{i}"}


@pytest.mark.parametrize("n,seed", [(1, 0), (10, 0), (1000, 7), (60000, 2**32 + 3)])
def test_randperm_is_torchs(n, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    assert randperm(n, seed) == torch.randperm(n, generator=g).tolist()


@pytest.mark.parametrize("n", [1, 2, 7, 10, 11, 12, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (False, False), (True, True),
                                               (False, True)])
def test_distributed_sampler_matches_torch(n, replicas, shuffle, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle, seed=3, drop_last=drop_last)
        theirs = tud.DistributedSampler(range(n), replicas, rank, shuffle, seed=3,
                                        drop_last=drop_last)
        for epoch in (0, 1, 5):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


def test_distributed_sampler_pads_by_repetition():
    """7 samples over 3 ranks: 9 slots, the first 2 of the epoch's order come again."""
    shares = [list(DistributedSampler(range(7), 3, r, shuffle=False)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 0], [2, 5, 1]]
    shares = [list(DistributedSampler(range(7), 3, r, shuffle=False, drop_last=True))
              for r in range(3)]
    assert shares == [[0, 3], [1, 4], [2, 5]]


def test_distributed_sampler_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(4), num_replicas=3, rank=3)
    with pytest.raises(RuntimeError, match="dist.init_process_group"):
        DistributedSampler(range(4))


def test_distributed_sampler_takes_the_default_group():
    import distbp.distributed as dist
    dist.init_process_group()
    try:
        assert list(DistributedSampler(range(5), shuffle=False)) == list(range(5))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (4, False), (4, True), (10, True),
                                                  (11, False)])
def test_loader_batches_match_torch(batch_size, drop_last):
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10)
    sampler = DistributedSampler(range(10), 2, 1, seed=5)
    ours = DataLoader(TensorDataset(x, y), batch_size=batch_size, sampler=sampler,
                      drop_last=drop_last)
    theirs = tud.DataLoader(tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                            batch_size=batch_size, drop_last=drop_last,
                            sampler=tud.DistributedSampler(range(10), 2, 1, seed=5))
    got, want = list(ours), list(theirs)
    assert len(ours) == len(theirs) == len(want) == len(got)
    for (a, b), (ta, tb) in zip(got, want):
        assert isinstance(a, distbp.Tensor) and a.dtype == np.float32 and b.dtype == np.int64
        np.testing.assert_array_equal(a.data, ta.numpy())
        np.testing.assert_array_equal(b.data, tb.numpy())


def test_fast_path_equals_per_sample_collate():
    x, y = np.random.default_rng(0).normal(size=(9, 2, 3)), np.arange(9)
    for ds in (TensorDataset(x, y), TensorDataset(distbp.tensor(x), y)):
        fast = list(DataLoader(ds, batch_size=4))
        slow = list(DataLoader(ds, batch_size=4, collate_fn=default_collate))
        for f, s in zip(fast, slow):
            for a, b in zip(f, s):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a.data, b.data)
    rows = list(DataLoader(x, batch_size=5))                # a numpy array is a dataset
    np.testing.assert_array_equal(rows[1].data, x[5:])


def test_collate_matches_torch_on_dicts_numbers_and_strings():
    ours = next(iter(DataLoader(Squares(5), batch_size=3)))
    theirs = next(iter(tud.DataLoader(Squares(5), batch_size=3)))
    assert ours["name"] == theirs["name"] == ["s0", "s1", "s2"]
    for key in ("x", "y"):
        assert str(ours[key].dtype) == str(theirs[key].dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours[key].data, theirs[key].numpy())
    assert str(default_collate([0.5, 1.5]).dtype) == "float64"


def test_shuffle_repeats_under_manual_seed_and_generator():
    def order(**kw):
        return [int(v) for b in DataLoader(np.arange(20), batch_size=6, shuffle=True, **kw)
                for v in b.data]
    distbp.manual_seed(1)
    a = order()
    distbp.manual_seed(1)
    assert order() == a and sorted(a) == list(range(20)) and a != list(range(20))
    assert order(generator=np.random.default_rng(4)) == order(generator=np.random.default_rng(4))


def test_samplers_subsets_and_errors():
    assert list(BatchSampler(range(5), 2, drop_last=False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, drop_last=True)) == 2
    parts = random_split(range(10), [0.7, 0.3], generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    assert list(Subset(range(10), [3, 1])) == [3, 1]
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(range(3), sampler=range(3), shuffle=True)
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="worker_init_fn"):
        DataLoader(range(3), worker_init_fn=print)
    loader = DataLoader(Squares(3), batch_size=None)        # no auto-batching: samples as they are
    assert [s["y"] for s in loader] == [0, 1, 4]
