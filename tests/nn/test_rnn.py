"""RNN, LSTM, GRU and their cells against torch.nn with copied weights in float64: outputs, final
states, input / initial-state gradients and every parameter gradient; names and repr as torch's."""
import numpy as np
import pytest
import torch

import distbp
from distbp import nn
from distbp.tensor import Tensor


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def compare_rnn(ours, theirs, x, hx=None, tol=1e-10):
    ours.double()
    theirs.double()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    xs, txs = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    hs = [Tensor(h.copy(), requires_grad=True) for h in hx] if hx is not None else None
    ths = [torch.tensor(h.copy(), requires_grad=True) for h in hx] if hx is not None else None
    pack = (lambda s: s if isinstance(ours, (nn.LSTM, nn.LSTMCell)) else s[0])
    y = ours(xs, pack(hs)) if hs is not None else ours(xs)
    ty = theirs(txs, pack(ths)) if ths is not None else theirs(txs)
    rng = np.random.default_rng(1)
    loss, tloss = 0, 0
    for a, b in zip(_flat(y), _flat(ty)):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=tol, atol=tol)
        w = rng.standard_normal(a.shape)
        loss, tloss = loss + (a * Tensor(w)).sum(), tloss + (b * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(xs.grad, txs.grad.numpy(), rtol=tol, atol=tol)
    for h, th in zip(hs or [], ths or []):
        np.testing.assert_allclose(h.grad, th.grad.numpy(), rtol=tol, atol=tol)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name)
    assert repr(ours) == repr(theirs)


def randn(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape)


CONFIGS = [dict(), dict(num_layers=2), dict(bidirectional=True), dict(bias=False),
           dict(num_layers=2, bidirectional=True, batch_first=True)]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_recurrent_layers_match_torch(kind, cfg):
    ours, theirs = getattr(nn, kind)(3, 4, **cfg), getattr(torch.nn, kind)(3, 4, **cfg)
    x = randn(2, 5, 3) if cfg.get("batch_first") else randn(5, 2, 3)
    compare_rnn(ours, theirs, x)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_initial_state_and_unbatched_input(kind):
    D, L = 2, 2
    states = 2 if kind == "LSTM" else 1
    hx = [0.5 * randn(L * D, 3, 4, seed=i) for i in range(states)]
    compare_rnn(getattr(nn, kind)(3, 4, num_layers=L, bidirectional=True),
                getattr(torch.nn, kind)(3, 4, num_layers=L, bidirectional=True), randn(6, 3, 3), hx)
    compare_rnn(getattr(nn, kind)(3, 4), getattr(torch.nn, kind)(3, 4), randn(6, 3))  # (T, I)


def test_rnn_relu_and_dropout_between_layers():
    compare_rnn(nn.RNN(3, 4, 2, nonlinearity="relu"), torch.nn.RNN(3, 4, 2, nonlinearity="relu"),
                randn(5, 2, 3))
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = distbp.randn(5, 2, 3)
    lstm.eval()
    a, b = lstm(x)[0], lstm(x)[0]
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())  # eval: no dropout
    lstm.train()
    assert not np.array_equal(lstm(x)[0].detach().numpy(), a.detach().numpy())


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch(kind, bias):
    compare_rnn(getattr(nn, kind)(3, 4, bias=bias), getattr(torch.nn, kind)(3, 4, bias=bias),
                randn(2, 3))
    states = [0.5 * randn(2, 4, seed=i) for i in range(2 if kind == "LSTMCell" else 1)]
    compare_rnn(getattr(nn, kind)(3, 4, bias=bias), getattr(torch.nn, kind)(3, 4, bias=bias),
                randn(2, 3), states)
    compare_rnn(getattr(nn, kind)(3, 4), getattr(torch.nn, kind)(3, 4), randn(3))  # unbatched


def test_errors_name_the_problem():
    with pytest.raises(NotImplementedError, match="proj_size=2"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="expected input .* I=3, got shape \\(2, 5\\)"):
        nn.GRU(3, 4)(distbp.randn(2, 5))
    with pytest.raises(ValueError, match="hidden state of shape \\(1, 2, 4\\)"):
        nn.LSTM(3, 4)(distbp.randn(5, 2, 3), (distbp.zeros(1, 3, 4), distbp.zeros(1, 3, 4)))
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.LSTM(3, 4, device="cuda")


def test_long_lstm_sequence_backward_is_iterative():
    lstm = nn.LSTM(2, 3, batch_first=True)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 300, 2)).astype(np.float32),
               requires_grad=True)
    out, (h, c) = lstm(x)
    out.sum().backward()
    assert x.grad.shape == (1, 300, 2) and np.isfinite(x.grad).all()
