"""BatchNorm's `allreduce` hook and nn.SyncBatchNorm: two replicas that sum their statistics (through
the hook, a process_group, or the default group in and outside DDP) behave like one BatchNorm over
the concatenated batch (outputs, input grads, running stats); SyncBatchNorm alone is torch's, and
convert_sync_batchnorm converts like torch's."""
import threading

import numpy as np
import pytest
import torch

from distbp import nn
from distbp.tensor import Tensor
from tests.nn.torch_compare import compare


class ThreadAllreduce:
    """Sums a numpy array in place across `world` threads (a tiny stand-in communicator)."""

    def __init__(self, world):
        self.slots = [None] * world
        self.barrier = threading.Barrier(world)

    def for_rank(self, rank):
        def allreduce(array):
            self.slots[rank] = array.copy()
            self.barrier.wait()
            total = np.sum(self.slots, axis=0)
            self.barrier.wait()  # everyone has read the slots before they are reused
            array[...] = total
            return array
        return allreduce


def test_allreduce_turns_batchnorm_into_sync_batchnorm():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 3, 5)) * 2 + 1, rng.standard_normal((8, 3, 5))
    full = nn.BatchNorm1d(3).double()
    xt = Tensor(x.copy(), requires_grad=True)
    out = full(xt)
    (out * Tensor(w)).sum().backward()

    comm = ThreadAllreduce(2)
    replicas = [nn.BatchNorm1d(3).double() for _ in range(2)]
    results = [None, None]

    def run(rank):
        bn = replicas[rank]
        bn.allreduce = comm.for_rank(rank)
        part = slice(4 * rank, 4 * rank + 4)
        xr = Tensor(x[part].copy(), requires_grad=True)
        y = bn(xr)
        (y * Tensor(w[part])).sum().backward()
        results[rank] = (y.data, xr.grad)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.concatenate([r[0] for r in results]), out.data, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([r[1] for r in results]), xt.grad, atol=1e-12)
    for bn in replicas:
        np.testing.assert_allclose(bn.running_mean.data, full.running_mean.data, atol=1e-12)
        np.testing.assert_allclose(bn.running_var.data, full.running_var.data, atol=1e-12)
    # weight/bias grads stay local sums: the data-parallel reducer sums them across replicas
    np.testing.assert_allclose(replicas[0].weight.grad + replicas[1].weight.grad, full.weight.grad,
                               atol=1e-12)


# ---------------------------------------------------------------- nn.SyncBatchNorm

class ThreadGroup:
    """A process_group for threads: the Communicator surface SyncBatchNorm uses (size, allreduce)."""

    def __init__(self, summer, rank, world):
        self.rank, self.size, self._sum = rank, world, summer.for_rank(rank)

    def allreduce(self, array, op="sum"):
        assert op == "sum"
        return self._sum(array)


def _halves_and_full(make, x, w):
    """Run `make(rank)`'s module on each half of x in two threads and one plain BatchNorm on all of
    x; returns (per-rank (output, input grad, module), full output, full input, full module)."""
    full = nn.BatchNorm1d(x.shape[1]).double()
    xt = Tensor(x.copy(), requires_grad=True)
    full_out = full(xt)
    (full_out * Tensor(w)).sum().backward()
    results = [None, None]

    def run(rank):
        bn = make(rank).double()
        part = slice(len(x) // 2 * rank, len(x) // 2 * (rank + 1))
        xr = Tensor(x[part].copy(), requires_grad=True)
        y = bn(xr)
        (y * Tensor(w[part])).sum().backward()
        results[rank] = (y.data, xr.grad, bn)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results, full_out.data, xt, full


def test_sync_batchnorm_over_its_process_group_equals_one_full_batch():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((6, 3, 4)) * 3 - 1, rng.standard_normal((6, 3, 4))
    summer = ThreadAllreduce(2)
    results, full_out, xt, full = _halves_and_full(
        lambda r: nn.SyncBatchNorm(3, process_group=ThreadGroup(summer, r, 2)), x, w)
    np.testing.assert_allclose(np.concatenate([r[0] for r in results]), full_out, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([r[1] for r in results]), xt.grad, atol=1e-12)
    for _, _, bn in results:
        np.testing.assert_allclose(bn.running_mean.data, full.running_mean.data, atol=1e-12)
        np.testing.assert_allclose(bn.running_var.data, full.running_var.data, atol=1e-12)


def test_sync_batchnorm_alone_matches_torch_and_eval_uses_running_stats():
    rng = np.random.default_rng(3)
    for shape in [(4, 3), (4, 3, 5), (2, 3, 2, 3, 2)]:
        ours, theirs = nn.SyncBatchNorm(3, momentum=0.3), torch.nn.SyncBatchNorm(3, momentum=0.3)
        compare(ours, theirs, rng.standard_normal(shape) * 2 + 1)
        np.testing.assert_allclose(ours.running_var.data, theirs.running_var.detach().numpy(), atol=1e-12)
        ours.eval(), theirs.eval()
        compare(ours, theirs, rng.standard_normal(shape), copy=False)
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(3\): expected input \(N, 3, \*\)"):
        nn.SyncBatchNorm(3)(Tensor(np.zeros(3)))
    with pytest.raises(TypeError, match="process_group must be None or a distbp Communicator"):
        nn.SyncBatchNorm(3, process_group="world")


def test_convert_sync_batchnorm_replaces_batchnorms_like_torch():
    model = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3, momentum=0.2),
                          nn.Sequential(nn.BatchNorm1d(3, affine=False)), nn.InstanceNorm2d(3))
    model[1].running_mean.data[...] = 0.5
    model.eval()
    bn_weight, bn_mean = model[1].weight, model[1].running_mean
    group = ThreadGroup(ThreadAllreduce(1), 0, 1)
    out = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group=group)
    tmodel = torch.nn.SyncBatchNorm.convert_sync_batchnorm(torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 1), torch.nn.BatchNorm2d(3), torch.nn.Sequential(torch.nn.BatchNorm1d(3, affine=False)),
        torch.nn.InstanceNorm2d(3)))
    assert out is model
    assert [type(m).__name__ for m in out.modules()] == [type(m).__name__ for m in tmodel.modules()]
    sbn = out[1]
    assert sbn.weight is bn_weight and sbn.running_mean is bn_mean  # shared, as torch's
    assert (sbn.momentum, sbn.process_group, sbn.training) == (0.2, group, False)
    assert out[2][0].weight is None and out[2][0].affine is False
    assert list(out.state_dict()) == list(tmodel.state_dict())
    top = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(2))
    assert type(top) is nn.SyncBatchNorm and top.process_group is None


def _sync_bn_rank(rank, x, w):
    """A spawned rank: SyncBatchNorm with no process_group, outside DDP, syncs over the default
    group (as torch's does once init_process_group ran); then the same inside DDP."""
    import distbp.distributed as dist
    from distbp.nn.parallel import DistributedDataParallel
    dist.init_process_group()
    part = slice(len(x) // 2 * rank, len(x) // 2 * (rank + 1))
    out = []
    for wrap in (False, True):
        bn = nn.SyncBatchNorm(x.shape[1]).double()
        model = DistributedDataParallel(bn) if wrap else bn
        xr = Tensor(x[part].copy(), requires_grad=True)
        y = model(xr)
        (y * Tensor(w[part])).sum().backward()
        out.append((y.data, xr.grad, bn.running_mean.data.copy(), bn.weight.grad.copy()))
    dist.destroy_process_group()
    return out


def test_sync_batchnorm_uses_the_default_group_in_and_outside_ddp():
    from distbp.comm import spawn
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((8, 2, 3)) * 2 + 1, rng.standard_normal((8, 2, 3))
    full = nn.BatchNorm1d(2).double()
    xt = Tensor(x.copy(), requires_grad=True)
    y = full(xt)
    (y * Tensor(w)).sum().backward()
    ranks = spawn(_sync_bn_rank, args=(x, w), nprocs=2, timeout=60)
    for k in range(2):  # 0: plain, 1: inside DDP (which averages the weight grads over ranks)
        np.testing.assert_allclose(np.concatenate([r[k][0] for r in ranks]), y.data, atol=1e-12)
        np.testing.assert_allclose(np.concatenate([r[k][1] for r in ranks]), xt.grad, atol=1e-12)
        for r in ranks:
            np.testing.assert_allclose(r[k][2], full.running_mean.data, atol=1e-12)
    np.testing.assert_allclose(ranks[0][0][3] + ranks[1][0][3], full.weight.grad, atol=1e-12)
    np.testing.assert_allclose(ranks[0][1][3], full.weight.grad / 2, atol=1e-12)
