"""BatchNorm's `allreduce` hook: two replicas that sum their statistics through it behave like one
BatchNorm over the concatenated batch (outputs, input grads, running stats)."""
import threading

import numpy as np

from distbp import nn
from distbp.tensor import Tensor


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
