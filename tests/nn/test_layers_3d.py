"""The 3-D conv / pool modules, max-unpooling modules and their lazy forms against torch.nn's, same
weights, float64: outputs, input grads and parameter grads (tests/nn/torch_compare.py)."""
import numpy as np
import pytest
import torch

from distbp import nn
from distbp.tensor import Tensor
from tests.nn.torch_compare import compare

rng = np.random.default_rng(11)


@pytest.mark.parametrize("make", [
    lambda m: m.Conv3d(2, 4, 3, padding=1),
    lambda m: m.Conv3d(4, 6, (2, 3, 1), stride=(1, 2, 1), dilation=(2, 1, 1), groups=2, bias=False),
    lambda m: m.Conv3d(2, 3, 3, padding=(1, 1, 0), padding_mode="reflect"),
    lambda m: m.Conv3d(2, 3, (3, 2, 2), padding="same", padding_mode="circular"),
    lambda m: m.ConvTranspose3d(2, 4, 3, stride=2, padding=1, output_padding=1),
    lambda m: m.ConvTranspose3d(4, 2, (2, 3, 2), stride=(2, 1, 1), groups=2, dilation=(1, 1, 2)),
], ids=["conv3d", "conv3d_groups", "conv3d_reflect", "conv3d_same_circular", "convT3d", "convT3d_groups"])
def test_conv3d_modules_match_torch(make):
    ours, theirs = make(nn), make(torch.nn)
    cin = ours.in_channels
    compare(ours, theirs, rng.standard_normal((2, cin, 4, 5, 4)))


def test_conv_transpose3d_output_size_matches_torch():
    ours, theirs = nn.ConvTranspose3d(2, 3, 3, stride=2), torch.nn.ConvTranspose3d(2, 3, 3, stride=2)
    ours.double()
    theirs.double().load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((1, 2, 3, 3, 4))
    y = ours(Tensor(x), output_size=(8, 7, 10))
    ty = theirs(torch.tensor(x), output_size=(8, 7, 10))
    assert y.shape == (1, 3, 8, 7, 10) == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("lazy, eager", [
    (lambda m: m.LazyConv3d(4, 2, stride=2), nn.Conv3d),
    (lambda m: m.LazyConvTranspose3d(4, 2, stride=2), nn.ConvTranspose3d),
])
def test_lazy_conv3d_becomes_conv3d_and_matches_torch(lazy, eager):
    ours, theirs = lazy(nn), lazy(torch.nn)
    x = rng.standard_normal((2, 3, 4, 4, 4))
    ours(Tensor(x))
    theirs(torch.tensor(x, dtype=torch.float32))
    assert type(ours) is eager and ours.in_channels == 3
    assert ours.weight.shape == tuple(theirs.weight.shape)
    compare(ours, theirs, x)


@pytest.mark.parametrize("make, shape", [
    (lambda m: m.MaxPool3d(3, 2, 1, ceil_mode=True), (2, 2, 5, 6, 5)),
    (lambda m: m.AvgPool3d((2, 3, 2), (1, 2, 2), (1, 1, 0), count_include_pad=False), (2, 2, 4, 6, 5)),
    (lambda m: m.AvgPool3d(2, divisor_override=5), (1, 2, 4, 4, 4)),
    (lambda m: m.LPPool3d(2, 2), (1, 2, 4, 4, 4)),
    (lambda m: m.AdaptiveMaxPool3d((2, None, 3)), (2, 2, 5, 3, 7)),
], ids=["maxpool3d", "avgpool3d", "avgpool3d_divisor", "lppool3d", "adaptivemaxpool3d"])
def test_pool3d_modules_match_torch(make, shape):
    compare(make(nn), make(torch.nn), rng.standard_normal(shape))


@pytest.mark.parametrize("nd, shape", [(1, (2, 3, 8)), (2, (2, 3, 6, 4)), (3, (1, 2, 4, 6, 2))])
def test_max_unpool_modules_invert_max_pool_like_torch(nd, shape):
    x = rng.standard_normal(shape)
    pool = getattr(nn, f"MaxPool{nd}d")(2, return_indices=True)
    unpool = getattr(nn, f"MaxUnpool{nd}d")(2)
    tpool = getattr(torch.nn, f"MaxPool{nd}d")(2, return_indices=True)
    tunpool = getattr(torch.nn, f"MaxUnpool{nd}d")(2)
    xt, txt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, i = pool(xt)
    ty, ti = tpool(txt)
    np.testing.assert_array_equal(i.data, ti.numpy())
    out, tout = unpool(y, i, output_size=shape), tunpool(ty, ti, output_size=shape)
    np.testing.assert_array_equal(out.data, tout.detach().numpy())
    g = rng.standard_normal(shape)
    (out * Tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xt.grad, txt.grad.numpy(), atol=1e-15)
