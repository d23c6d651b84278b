"""Each layer against its torch counterpart with the same weights, float64: outputs and all grads."""
import numpy as np
import pytest
import torch

from distbp import nn
from distbp.tensor import Tensor
from tests.nn.torch_compare import compare, copy_weights

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    compare(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias), randn(4, 5))
    compare(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias), randn(2, 3, 5))


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2)])
def test_conv1d(stride, padding):
    compare(nn.Conv1d(3, 4, 3, stride=stride, padding=padding),
            torch.nn.Conv1d(3, 4, 3, stride=stride, padding=padding), randn(2, 3, 11))


@pytest.mark.parametrize("stride,padding,bias", [(1, 0, True), (2, 1, False), ((1, 2), (2, 0), True)])
def test_conv2d(stride, padding, bias):
    compare(nn.Conv2d(2, 3, (3, 2), stride=stride, padding=padding, bias=bias),
            torch.nn.Conv2d(2, 3, (3, 2), stride=stride, padding=padding, bias=bias), randn(2, 2, 7, 6))


@pytest.mark.parametrize("ours,theirs,shape", [
    (nn.MaxPool1d(2), torch.nn.MaxPool1d(2), (2, 3, 10)),
    (nn.MaxPool1d(3, stride=2, padding=1), torch.nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9)),
    (nn.AvgPool1d(2), torch.nn.AvgPool1d(2), (2, 3, 10)),
    (nn.MaxPool2d(2), torch.nn.MaxPool2d(2), (2, 3, 6, 8)),
    (nn.MaxPool2d(3, stride=2, padding=1), torch.nn.MaxPool2d(3, stride=2, padding=1), (2, 1, 7, 7)),
    (nn.AvgPool2d(2, stride=1), torch.nn.AvgPool2d(2, stride=1), (2, 2, 5, 4)),
    (nn.AdaptiveAvgPool1d(1), torch.nn.AdaptiveAvgPool1d(1), (2, 3, 7)),
    (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), (2, 3, 4, 5)),
], ids=lambda x: repr(x) if isinstance(x, tuple) else type(x).__name__)
def test_pooling(ours, theirs, shape):
    compare(ours, theirs, randn(*shape))


def set_affine(ours):
    ours.weight.data[...] = 1 + 0.3 * randn(*ours.weight.data.shape)
    ours.bias.data[...] = 0.3 * randn(*ours.bias.data.shape)
    return ours


@pytest.mark.parametrize("cls,tcls,shape", [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 3, 4, 2)),
])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_train_steps_then_eval(cls, tcls, shape, momentum):
    ours = set_affine(cls(3, momentum=momentum)).double()
    theirs = copy_weights(ours, tcls(3, momentum=momentum))
    for step in range(3):  # running statistics after a few training steps
        compare(ours, theirs, 2 + 3 * randn(*shape), copy=False)
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        np.testing.assert_allclose(sd[k], tsd[k].numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    assert int(sd["num_batches_tracked"]) == 3
    ours.eval(), theirs.eval()
    compare(ours, theirs, randn(*shape), copy=False)


def test_batchnorm_without_affine_or_running_stats():
    compare(nn.BatchNorm1d(3, affine=False), torch.nn.BatchNorm1d(3, affine=False), randn(5, 3))
    ours, theirs = nn.BatchNorm2d(3, track_running_stats=False), torch.nn.BatchNorm2d(
        3, track_running_stats=False)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    ours.eval(), theirs.eval()  # no running stats: eval normalises with batch statistics
    compare(ours, theirs, randn(4, 3, 2, 2))


def test_batchnorm_bad_input_names_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\).*\(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((2, 4, 5, 5))))


@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4, 5), (4, 5))])
def test_layernorm(shape, normalized):
    ours = set_affine(nn.LayerNorm(normalized))
    compare(ours, torch.nn.LayerNorm(normalized), randn(*shape))


def test_embedding():
    ids = np.array([[1, 3, 3], [0, 9, 1]])
    compare(nn.Embedding(10, 4), torch.nn.Embedding(10, 4), ids, int_inputs=(0,))
    compare(nn.Embedding(10, 4, padding_idx=0), torch.nn.Embedding(10, 4, padding_idx=0), ids,
            int_inputs=(0,))


@pytest.mark.parametrize("layers,batch_first,with_h0", [(1, False, False), (2, True, True),
                                                        (2, False, True)])
def test_gru(layers, batch_first, with_h0):
    ours = nn.GRU(3, 4, num_layers=layers, batch_first=batch_first)
    theirs = torch.nn.GRU(3, 4, num_layers=layers, batch_first=batch_first)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = randn(2, 5, 3) if batch_first else randn(5, 2, 3)
    inputs = (x, 0.5 * randn(layers, 2, 4)) if with_h0 else (x,)
    compare(ours, theirs, *inputs)


def test_gru_long_sequence_backward_is_iterative():
    gru = nn.GRU(2, 3, batch_first=True)
    x = Tensor(randn(1, 300, 2).astype(np.float32), requires_grad=True)
    out, h = gru(x)
    out.sum().backward()
    assert x.grad.shape == (1, 300, 2) and np.isfinite(x.grad).all()


class TorchCausalAttention(torch.nn.Module):
    """torch.nn.MultiheadAttention with a causal mask: the reference for CausalSelfAttention."""

    def __init__(self, dim, heads, bias=True):
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)

    def load_state_dict(self, sd, strict=True):
        return self.mha.load_state_dict(sd, strict)

    def named_parameters(self, *a, **k):
        return self.mha.named_parameters(*a, **k)

    def forward(self, x):
        T = x.shape[1]
        mask = torch.triu(torch.full((T, T), float("-inf"), dtype=x.dtype), diagonal=1)
        return self.mha(x, x, x, attn_mask=mask, need_weights=False)[0]


@pytest.mark.parametrize("heads,bias", [(1, True), (2, True), (4, False)])
def test_causal_self_attention_matches_torch_mha(heads, bias):
    ours = nn.CausalSelfAttention(8, heads, bias=bias)
    compare(ours, TorchCausalAttention(8, heads, bias=bias), randn(3, 5, 8))


def test_causal_self_attention_is_causal():
    attn = nn.CausalSelfAttention(8, 2).double()
    x = randn(1, 6, 8)
    y1 = attn(Tensor(x)).data
    x[:, 4:] += 1.0  # changing the future must not change the past
    y2 = attn(Tensor(x)).data
    np.testing.assert_allclose(y1[:, :4], y2[:, :4], rtol=0, atol=1e-12)
    assert not np.allclose(y1[:, 4:], y2[:, 4:])


class TorchBasicBlock(torch.nn.Module):
    """torchvision.models.resnet.BasicBlock, written out (1-D or 2-D)."""

    def __init__(self, cin, cout, stride, dims):
        super().__init__()
        Conv = torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d
        BN = torch.nn.BatchNorm1d if dims == 1 else torch.nn.BatchNorm2d
        self.conv1 = Conv(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BN(cout)
        self.conv2 = Conv(cout, cout, 3, padding=1, bias=False)
        self.bn2 = BN(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(Conv(cin, cout, 1, stride=stride, bias=False),
                                                  BN(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


@pytest.mark.parametrize("cin,cout,stride,dims", [(4, 4, 1, 2), (3, 5, 2, 2), (4, 4, 1, 1),
                                                  (2, 6, 2, 1)])
def test_basic_block(cin, cout, stride, dims):
    ours, theirs = nn.BasicBlock(cin, cout, stride=stride, dims=dims), TorchBasicBlock(cin, cout,
                                                                                         stride, dims)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = randn(2, cin, 8, 6) if dims == 2 else randn(2, cin, 12)
    compare(ours, theirs, x)
    ours.eval(), theirs.eval()
    compare(ours, theirs, x, copy=False)


@pytest.mark.parametrize("ours,theirs", [
    (nn.ReLU(), torch.nn.ReLU()), (nn.GELU(), torch.nn.GELU()), (nn.Tanh(), torch.nn.Tanh()),
    (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)), (nn.Identity(), torch.nn.Identity()),
    (nn.Flatten(), torch.nn.Flatten()), (nn.Flatten(0, 1), torch.nn.Flatten(0, 1)),
], ids=lambda m: repr(m))
def test_activations(ours, theirs):
    compare(ours, theirs, randn(2, 3, 4))


def test_losses():
    logits, target = randn(6, 5), rng.integers(0, 5, size=6)
    for kw in (dict(), dict(label_smoothing=0.1), dict(reduction="sum")):
        x, tx = Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
        loss = nn.CrossEntropyLoss(**kw)(x, target)
        tloss = torch.nn.CrossEntropyLoss(**kw)(tx, torch.tensor(target))
        loss.backward(), tloss.backward()
        np.testing.assert_allclose(loss.data, tloss.item(), rtol=1e-12)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    a, b = randn(3, 4), randn(3, 4)
    x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    nn.MSELoss()(x, Tensor(b)).backward()
    torch.nn.MSELoss()(tx, torch.tensor(b)).backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_dropout_train_and_eval():
    d = nn.Dropout(0.5)
    x = Tensor(np.ones((200, 50)))
    y = d(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    np.testing.assert_array_equal(d(x).data, x.data)


# ---------------------------------------------------------------- the functional-family layers

@pytest.mark.parametrize("args,kw", [
    ((2, 4, 3, 1, 1, 2), dict()),                         # positional: stride, padding, dilation
    ((4, 6, 3), dict(groups=2, bias=False)),
    ((2, 3, (3, 2)), dict(padding="same", dilation=(2, 1))),
    ((2, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((2, 3, 3), dict(padding=(2, 1), padding_mode="circular")),
    ((2, 3, 4), dict(padding="same", padding_mode="replicate")),
])
def test_conv2d_torch_arguments(args, kw):
    compare(nn.Conv2d(*args, **kw), torch.nn.Conv2d(*args, **kw), randn(2, args[0], 7, 6))


@pytest.mark.parametrize("args,kw", [((2, 4, 3, 2, 2, 2), dict()), ((4, 4, 3), dict(groups=4, padding="same")),
                                     ((2, 3, 3), dict(padding=2, padding_mode="replicate"))])
def test_conv1d_torch_arguments(args, kw):
    compare(nn.Conv1d(*args, **kw), torch.nn.Conv1d(*args, **kw), randn(2, args[0], 11))


def test_conv2d_unbatched_input():
    compare(nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(2, 3, 3, padding=1), randn(2, 5, 4))


@pytest.mark.parametrize("cls,tcls,shape", [(nn.ConvTranspose2d, torch.nn.ConvTranspose2d, (2, 4, 3, 4)),
                                            (nn.ConvTranspose1d, torch.nn.ConvTranspose1d, (2, 4, 5))])
def test_conv_transpose(cls, tcls, shape):
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    compare(cls(4, 6, 3, **kw), tcls(4, 6, 3, **kw), randn(*shape))


def test_conv_transpose2d_output_size():
    ours, theirs = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    copy_weights(ours.double(), theirs)
    x = randn(1, 3, 4, 4)
    for size in [(7, 7), (8, 8), (1, 2, 8, 7)]:
        y, ty = ours(Tensor(x), output_size=size), theirs(torch.tensor(x), output_size=size)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="output_size"):
        ours(Tensor(x), output_size=(10, 10))


NEW_ACTIVATIONS = [
    (nn.ELU(0.5), torch.nn.ELU(0.5)), (nn.SELU(), torch.nn.SELU()), (nn.CELU(2.0), torch.nn.CELU(2.0)),
    (nn.Softplus(2, 1), torch.nn.Softplus(2, 1)), (nn.Mish(), torch.nn.Mish()), (nn.SiLU(), torch.nn.SiLU()),
    (nn.Hardswish(), torch.nn.Hardswish()), (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    (nn.ReLU6(), torch.nn.ReLU6()), (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.GLU(1), torch.nn.GLU(1)), (nn.LogSigmoid(), torch.nn.LogSigmoid()),
    (nn.Hardtanh(-0.5, 0.5), torch.nn.Hardtanh(-0.5, 0.5)), (nn.Softsign(), torch.nn.Softsign()),
    (nn.Tanhshrink(), torch.nn.Tanhshrink()), (nn.Softmin(1), torch.nn.Softmin(1)),
    (nn.Threshold(0.1, 20), torch.nn.Threshold(0.1, 20)), (nn.Softshrink(0.3), torch.nn.Softshrink(0.3)),
    (nn.Hardshrink(0.3), torch.nn.Hardshrink(0.3)), (nn.PReLU(), torch.nn.PReLU()),
    (nn.PReLU(4), torch.nn.PReLU(4)), (nn.Softmax2d(), torch.nn.Softmax2d()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.RReLU(), torch.nn.RReLU()),
]


@pytest.mark.parametrize("ours,theirs", NEW_ACTIVATIONS, ids=lambda m: repr(m))
def test_new_activation_modules(ours, theirs):
    ours.eval(), theirs.eval()
    # torch's hardsigmoid backward multiplies by the float32 constant 1.0f / 6 (rel. error 3e-8)
    compare(ours, theirs, randn(2, 4, 3, 2), tol=1e-7 if isinstance(ours, nn.Hardsigmoid) else 1e-10)


@pytest.mark.parametrize("ndim,dim", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_softmax_without_dim_picks_torchs_implicit_dim(ndim, dim):
    x = randn(*[3, 4, 2, 5][:ndim])
    for ours, theirs in [(nn.Softmax(), torch.nn.Softmax()), (nn.LogSoftmax(), torch.nn.LogSoftmax()),
                         (nn.Softmin(), torch.nn.Softmin())]:
        with pytest.warns(UserWarning, match="Implicit dimension"):
            y = ours(Tensor(x))
        with pytest.warns(UserWarning):
            ty = theirs(torch.tensor(x))
        np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-12)
        np.testing.assert_allclose(y.data, type(ours)(dim=dim)(Tensor(x)).data, rtol=1e-12)


@pytest.mark.parametrize("ours,theirs,shape", [
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 6, 7)),
    (nn.MaxPool2d(2, 1, 0, 2), torch.nn.MaxPool2d(2, 1, 0, 2), (1, 2, 5, 5)),
    (nn.AvgPool2d(3, 2, 1, True, False), torch.nn.AvgPool2d(3, 2, 1, True, False), (2, 2, 6, 5)),
    (nn.AvgPool1d(3, 2, 1, False, False), torch.nn.AvgPool1d(3, 2, 1, False, False), (2, 2, 7)),
    (nn.LPPool2d(2, 2), torch.nn.LPPool2d(2, 2), (1, 2, 4, 4)),
    (nn.AdaptiveAvgPool2d((3, 5)), torch.nn.AdaptiveAvgPool2d((3, 5)), (2, 2, 7, 9)),
    (nn.AdaptiveMaxPool2d(3), torch.nn.AdaptiveMaxPool2d(3), (2, 2, 7, 8)),
    (nn.AdaptiveMaxPool1d(4), torch.nn.AdaptiveMaxPool1d(4), (2, 2, 9)),
], ids=lambda x: repr(x) if isinstance(x, tuple) else type(x).__name__)
def test_pooling_torch_arguments(ours, theirs, shape):
    compare(ours, theirs, randn(*shape))


def test_max_pool_return_indices_match_torch():
    x = randn(2, 3, 7, 6)
    for k, s, p, d, c in [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (2, 1, 1, 2, False)]:
        y, i = nn.MaxPool2d(k, s, p, d, return_indices=True, ceil_mode=c)(Tensor(x))
        ty, ti = torch.nn.MaxPool2d(k, s, p, d, return_indices=True, ceil_mode=c)(torch.tensor(x))
        np.testing.assert_array_equal(y.data, ty.numpy())
        np.testing.assert_array_equal(i.data, ti.numpy())
    y, i = nn.AdaptiveMaxPool2d((3, 4), return_indices=True)(Tensor(x))
    ty, ti = torch.nn.AdaptiveMaxPool2d((3, 4), return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(i.data, ti.numpy())


@pytest.mark.parametrize("ours,theirs,shape", [
    (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (3, 4, 5)),
    (nn.GroupNorm(3, 6, affine=False), torch.nn.GroupNorm(3, 6, affine=False), (2, 6, 2, 2)),
    (nn.GroupNorm(2, 4, bias=False), torch.nn.GroupNorm(2, 4, bias=False), (3, 4, 5)),
    (nn.InstanceNorm1d(3), torch.nn.InstanceNorm1d(3), (2, 3, 5)),
    (nn.InstanceNorm2d(3, affine=True), torch.nn.InstanceNorm2d(3, affine=True), (2, 3, 3, 4)),
    (nn.InstanceNorm2d(3), torch.nn.InstanceNorm2d(3), (3, 3, 4)),
    (nn.LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False), (3, 4)),
    (nn.LayerNorm(4, elementwise_affine=False), torch.nn.LayerNorm(4, elementwise_affine=False), (3, 4)),
    (nn.RMSNorm(4), torch.nn.RMSNorm(4), (3, 4)),
    (nn.LocalResponseNorm(3), torch.nn.LocalResponseNorm(3), (2, 5, 3, 3)),
    (nn.BatchNorm3d(3), torch.nn.BatchNorm3d(3), (2, 3, 2, 3, 2)),
    (nn.BatchNorm1d(3, bias=False), torch.nn.BatchNorm1d(3, bias=False), (5, 3)),
], ids=lambda x: repr(x) if isinstance(x, tuple) else type(x).__name__)
def test_norm_layers(ours, theirs, shape):
    compare(ours, theirs, randn(*shape))


def test_instance_norm_running_stats_then_eval():
    ours, theirs = nn.InstanceNorm1d(3, track_running_stats=True), torch.nn.InstanceNorm1d(
        3, track_running_stats=True)
    copy_weights(ours.double(), theirs)
    for _ in range(2):
        compare(ours, theirs, 1 + 2 * randn(4, 3, 6), copy=False)
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v, theirs.state_dict()[k].numpy(), rtol=1e-10, err_msg=k)
    ours.eval(), theirs.eval()
    compare(ours, theirs, randn(4, 3, 6), copy=False)


def test_positional_dtype_device_order():
    # the sixth positional argument of Linear is dtype after device, as in torch
    lin = nn.Linear(3, 2, True, None, np.float64)
    assert lin.weight.dtype == np.float64
    assert nn.LayerNorm(4, 1e-5, True, True, "cpu", np.float64).weight.dtype == np.float64
    assert nn.BatchNorm1d(3, 1e-5, 0.1, True, True, None, np.float64).weight.dtype == np.float64
    assert nn.Embedding(5, 2, None, None, 2.0, False, False, None, False, None, np.float64).weight.dtype == np.float64
    with pytest.raises(ValueError, match="device='cuda'.*CPU"):
        nn.Linear(3, 2, device="cuda")


def test_conv2d_sixth_positional_is_dilation():
    conv = nn.Conv2d(1, 1, 3, 1, 0, 2)
    assert conv.dilation == (2, 2) and conv.bias is not None
    assert nn.Conv2d(2, 4, 3, 1, 0, 1, 2).weight.shape == (4, 1, 3, 3)  # seventh: groups


@pytest.mark.parametrize("ours,theirs", [
    (nn.ZeroPad2d((1, 2, 0, 1)), torch.nn.ZeroPad2d((1, 2, 0, 1))),
    (nn.ConstantPad1d(2, 0.5), torch.nn.ConstantPad1d(2, 0.5)),
    (nn.ReflectionPad2d(1), torch.nn.ReflectionPad2d(1)),
    (nn.ReplicationPad1d((2, 1)), torch.nn.ReplicationPad1d((2, 1))),
    (nn.CircularPad2d((1, 0, 2, 1)), torch.nn.CircularPad2d((1, 0, 2, 1))),
    (nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Upsample(scale_factor=2, mode="bilinear")),
    (nn.UpsamplingNearest2d(size=(5, 7)), torch.nn.UpsamplingNearest2d(size=(5, 7))),
    (nn.UpsamplingBilinear2d(scale_factor=1.5), torch.nn.UpsamplingBilinear2d(scale_factor=1.5)),
    (nn.PixelShuffle(2), torch.nn.PixelShuffle(2)), (nn.Dropout2d(0.3), torch.nn.Dropout2d(0.3)),
    (nn.Unfold(2, padding=1), torch.nn.Unfold(2, padding=1)),
], ids=lambda m: type(m).__name__)
def test_shape_layers(ours, theirs):
    ours.eval(), theirs.eval()
    one_d = isinstance(ours, (nn.ConstantPad1d, nn.ReplicationPad1d))
    compare(ours, theirs, randn(2, 3, 4) if one_d else randn(2, 4, 3, 4))


def test_two_input_layers():
    for ours, theirs in [(nn.Bilinear(3, 2, 4), torch.nn.Bilinear(3, 2, 4)),
                         (nn.CosineSimilarity(), torch.nn.CosineSimilarity()),
                         (nn.PairwiseDistance(), torch.nn.PairwiseDistance())]:
        compare(ours, theirs, randn(5, 3), randn(5, 2) if isinstance(ours, nn.Bilinear) else randn(5, 3))


def _loss_case(ours, theirs, x, t, *more):
    """loss(x, t, *more) with a grad for x; reduction='none' losses are summed first."""
    xs = [Tensor(x, requires_grad=True)] + [Tensor(a) for a in more]
    txs = [torch.tensor(x, requires_grad=True)] + [torch.tensor(a) for a in more]
    loss, tloss = ours(xs[0], Tensor(t), *xs[1:]), theirs(txs[0], torch.tensor(t), *txs[1:])
    loss.sum().backward(), tloss.sum().backward()
    np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xs[0].grad, txs[0].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_loss_modules():
    x, t = randn(4, 3), rng.integers(0, 3, size=4)
    w = np.array([0.2, 1.0, 3.0])
    _loss_case(nn.CrossEntropyLoss(Tensor(w), ignore_index=1, label_smoothing=0.1),
               torch.nn.CrossEntropyLoss(torch.tensor(w), ignore_index=1, label_smoothing=0.1), x, t)
    _loss_case(nn.CrossEntropyLoss(reduce=False), torch.nn.CrossEntropyLoss(reduce=False), x, t)
    _loss_case(nn.NLLLoss(Tensor(w), reduction="sum"), torch.nn.NLLLoss(torch.tensor(w), reduction="sum"), x, t)
    y = randn(4, 3)
    for ours, theirs in [(nn.L1Loss(), torch.nn.L1Loss()), (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum")),
                         (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5)),
                         (nn.HuberLoss(delta=0.3), torch.nn.HuberLoss(delta=0.3)),
                         (nn.KLDivLoss(reduction="batchmean", log_target=True),
                          torch.nn.KLDivLoss(reduction="batchmean", log_target=True)),
                         (nn.BCEWithLogitsLoss(pos_weight=Tensor(w)), torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w))),
                         (nn.SoftMarginLoss(), torch.nn.SoftMarginLoss()),
                         (nn.MultiLabelSoftMarginLoss(), torch.nn.MultiLabelSoftMarginLoss()),
                         (nn.PoissonNLLLoss(), torch.nn.PoissonNLLLoss())]:
        _loss_case(ours, theirs, x, np.abs(y) if isinstance(ours, (nn.PoissonNLLLoss,)) else
                   (y > 0).astype(float) if isinstance(ours, (nn.BCEWithLogitsLoss, nn.MultiLabelSoftMarginLoss)) else y)
    _loss_case(nn.BCELoss(Tensor(w)), torch.nn.BCELoss(torch.tensor(w)), 1 / (1 + np.exp(-x)), (y > 0).astype(float))
    _loss_case(nn.GaussianNLLLoss(), torch.nn.GaussianNLLLoss(), x, y, np.abs(y) + 0.1)
    _loss_case(nn.MultiMarginLoss(), torch.nn.MultiMarginLoss(), x, t)
    _loss_case(nn.HingeEmbeddingLoss(), torch.nn.HingeEmbeddingLoss(), x, np.sign(y))
    a, b, sign = Tensor(x[:, 0], requires_grad=True), Tensor(x[:, 1]), Tensor(np.sign(y[:, 0]))
    ta, tb, tsign = torch.tensor(x[:, 0], requires_grad=True), torch.tensor(x[:, 1]), torch.tensor(np.sign(y[:, 0]))
    nn.MarginRankingLoss(0.1)(a, b, sign).backward()
    torch.nn.MarginRankingLoss(0.1)(ta, tb, tsign).backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-12)


def test_loss_weight_is_a_state_dict_buffer_like_torch():
    w = np.array([1.0, 2.0])
    assert list(nn.CrossEntropyLoss(Tensor(w)).state_dict()) == list(
        torch.nn.CrossEntropyLoss(torch.tensor(w)).state_dict()) == ["weight"]


def test_embedding_options_match_torch():
    ids = np.array([[1, 3, 3], [0, 4, 1]])
    kw = dict(padding_idx=-1, scale_grad_by_freq=True)
    compare(nn.Embedding(5, 4, **kw), torch.nn.Embedding(5, 4, **kw), ids, int_inputs=(0,))
    ours, theirs = nn.Embedding(5, 4, max_norm=1.0), torch.nn.Embedding(5, 4, max_norm=1.0)
    copy_weights(ours.double(), theirs)
    y, ty = ours(Tensor(ids)), theirs(torch.tensor(ids))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-10)
    pre = nn.Embedding.from_pretrained(Tensor(np.eye(3)))
    assert not pre.weight.requires_grad and pre(Tensor(np.array([2]))).data.tolist() == [[0, 0, 1]]


def test_embedding_bag_matches_torch():
    ids, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4])
    for mode in ("sum", "mean", "max"):
        ours, theirs = nn.EmbeddingBag(10, 3, mode=mode), torch.nn.EmbeddingBag(10, 3, mode=mode)
        copy_weights(ours.double(), theirs)
        y, ty = ours(Tensor(ids), Tensor(offsets)), theirs(torch.tensor(ids), torch.tensor(offsets))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("name,args", [("relu_", ()), ("elu_", (0.5,)), ("celu_", (2.0,)), ("selu_", ()),
                                       ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.5)),
                                       ("threshold_", (0.1, -1.0)), ("rrelu_", ())])
def test_inplace_functional_variants_match_torch(name, args):
    """Written into the input (the same object) and differentiable through the rebased graph, like
    torch; outside a graph the storage itself is overwritten (views see it)."""
    x = randn(3, 4)
    a, ta = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    b, tb = a * 1.5, ta * 1.5                       # a non-leaf, as torch requires
    out, tout = getattr(nn.functional, name)(b, *args), getattr(torch.nn.functional, name)(tb, *args)
    assert out is b
    np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-12)
    out.sum().backward(), tout.sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-12)
    c = Tensor(x.copy())
    storage = c.data
    getattr(nn.functional, name)(c, *args)
    np.testing.assert_allclose(storage, tb.detach().numpy() / 1.5 if name == "relu_" else c.data)


def test_inplace_modules_overwrite_and_leaf_rule():
    x = Tensor(randn(3, 4))
    for m in (nn.ReLU(inplace=True), nn.LeakyReLU(0.1, inplace=True), nn.Hardtanh(inplace=True),
              nn.SiLU(inplace=True), nn.Dropout(0.5, inplace=True)):
        y = x.clone()
        assert m(y) is y
    np.testing.assert_array_equal(nn.ReLU(inplace=True)(x).data, np.maximum(x.data, 0))
    leaf = Tensor(randn(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        nn.functional.relu(leaf, inplace=True)
