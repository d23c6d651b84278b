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
