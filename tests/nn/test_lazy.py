"""Lazy modules and nn.Buffer: the first forward reads the input size, materializes the parameters
with the eager module's init, and the module becomes that module; then it equals torch's module
with the same weights."""
import numpy as np
import pytest
import torch

import distbp
from distbp import nn
from tests.nn.torch_compare import compare

CASES = [
    (lambda m: m.LazyLinear(3), lambda m: m.Linear(5, 3), (4, 5)),
    (lambda m: m.LazyLinear(3, bias=False), lambda m: m.Linear(5, 3, bias=False), (2, 4, 5)),
    (lambda m: m.LazyConv1d(4, 3, padding=1), lambda m: m.Conv1d(2, 4, 3, padding=1), (2, 2, 7)),
    (lambda m: m.LazyConv2d(4, 3, groups=2), lambda m: m.Conv2d(2, 4, 3, groups=2), (2, 2, 6, 6)),
    (lambda m: m.LazyConvTranspose1d(3, 2, stride=2), lambda m: m.ConvTranspose1d(2, 3, 2, stride=2),
     (2, 2, 5)),
    (lambda m: m.LazyConvTranspose2d(3, 3), lambda m: m.ConvTranspose2d(2, 3, 3), (1, 2, 4, 4)),
    (lambda m: m.LazyBatchNorm1d(), lambda m: m.BatchNorm1d(3), (4, 3)),
    (lambda m: m.LazyBatchNorm2d(momentum=0.3), lambda m: m.BatchNorm2d(3, momentum=0.3), (4, 3, 2, 2)),
    (lambda m: m.LazyBatchNorm3d(), lambda m: m.BatchNorm3d(3), (2, 3, 2, 2, 2)),
    (lambda m: m.LazyInstanceNorm1d(affine=False, track_running_stats=False),
     lambda m: m.InstanceNorm1d(3), (2, 3, 5)),
    (lambda m: m.LazyInstanceNorm2d(track_running_stats=False),
     lambda m: m.InstanceNorm2d(3, affine=True), (2, 3, 4, 4)),
    (lambda m: m.LazyInstanceNorm3d(), lambda m: m.InstanceNorm3d(3, affine=True, track_running_stats=True),
     (2, 3, 2, 2, 2)),
    (lambda m: m.LazyBatchNorm1d(affine=False), lambda m: m.BatchNorm1d(3, affine=False), (4, 3)),
]


@pytest.mark.parametrize("lazy, eager, shape", CASES)
def test_lazy_module_becomes_the_eager_module(lazy, eager, shape):
    ours = lazy(nn)
    assert ours.has_uninitialized_params() == bool(list(ours.parameters()) + list(ours.buffers()))
    x = np.random.default_rng(0).standard_normal(shape)
    distbp.manual_seed(3)
    first = ours(distbp.tensor(x, dtype=distbp.float32))
    distbp.manual_seed(3)
    reference = eager(nn)
    again = reference(distbp.tensor(x, dtype=distbp.float32))
    assert type(ours) is type(reference) and repr(ours) == repr(reference)
    np.testing.assert_array_equal(first.detach().numpy(), again.detach().numpy())
    for (n, p), (rn, rp) in zip(ours.state_dict().items(), reference.state_dict().items()):
        assert n == rn and p.shape == rp.shape and p.dtype == rp.dtype
        np.testing.assert_array_equal(p.numpy(), rp.numpy(), err_msg=n)  # same init draws
    compare(ours, eager(torch.nn), x)


def test_uninitialized_parameter_refuses_use_and_lazy_dtype():
    m = nn.LazyLinear(2, dtype=distbp.float64)
    with pytest.raises(RuntimeError, match="no data yet"):
        m.weight.shape
    m(distbp.randn(3, 4, dtype=distbp.float64))
    assert m.weight.dtype == np.float64 and m.in_features == 4 and m.weight.shape == (2, 4)


def test_buffer_assignment_registers_like_torch():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Buffer(distbp.ones(3))
            self.cache = nn.Buffer(distbp.zeros(2), persistent=False)

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Buffer(torch.ones(3))
            self.cache = torch.nn.Buffer(torch.zeros(2), persistent=False)

    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["scale"]
