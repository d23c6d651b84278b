"""MultiheadAttention, CausalSelfAttention and the Transformer layers against torch with the same
weights (torch's state_dict names), float64, eval mode: outputs, attention weights, input grads
and every parameter grad."""
import numpy as np
import pytest
import torch

import distbp
from distbp import nn
from distbp.tensor import Tensor
from tests.nn.torch_compare import compare, copy_weights

rng = np.random.default_rng(5)


def randn(*shape):
    return rng.standard_normal(shape)


def _pair(ours, theirs):
    ours.double().eval()
    copy_weights(ours, theirs).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours, theirs


def _run_mha(ours, theirs, q, k, v, **kw):
    """Forward both with the same masks; compare output, weights and all grads."""
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    xs = [Tensor(a.copy(), requires_grad=True) for a in (q, k, v)]
    txs = [torch.tensor(a.copy(), requires_grad=True) for a in (q, k, v)]
    out, w = ours(*xs, **kw)
    tout, tw = theirs(*txs, **tkw)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-9, atol=1e-11)
    if tw is None:
        assert w is None
    else:
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-9, atol=1e-11)
    r = randn(*out.shape)
    (out * Tensor(r)).sum().backward()
    (tout * torch.tensor(r)).sum().backward()
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


CAUSAL = np.triu(np.full((5, 5), -np.inf), 1)
KPM = np.array([[False] * 5, [False, False, False, True, True]])

MHA_CASES = [
    ("plain", dict(), dict()),
    ("no_weights", dict(), dict(need_weights=False)),
    ("per_head_weights", dict(), dict(average_attn_weights=False)),
    ("batch_first", dict(batch_first=True), dict()),
    ("no_bias", dict(bias=False), dict()),
    ("bias_kv_zero_attn", dict(add_bias_kv=True, add_zero_attn=True), dict(key_padding_mask=KPM)),
    ("causal_float_mask", dict(), dict(attn_mask=CAUSAL, need_weights=False, is_causal=True)),
    ("bool_mask_and_kpm", dict(), dict(attn_mask=np.triu(np.ones((5, 5), bool), 1), key_padding_mask=KPM)),
    ("kpm_no_weights", dict(), dict(key_padding_mask=KPM, need_weights=False)),
    ("kdim_vdim", dict(kdim=3, vdim=6), dict()),
]


@pytest.mark.parametrize("name,ctor,kw", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_torch(name, ctor, kw):
    ours, theirs = _pair(nn.MultiheadAttention(8, 2, **ctor), torch.nn.MultiheadAttention(8, 2, **ctor))
    kd, vd = ctor.get("kdim", 8), ctor.get("vdim", 8)
    if ctor.get("batch_first"):
        q, k, v = randn(2, 5, 8), randn(2, 5, kd), randn(2, 5, vd)
    else:
        q, k, v = randn(5, 2, 8), randn(5, 2, kd), randn(5, 2, vd)
    if name == "plain":
        q = k = v  # self-attention path: one fused in-projection
    _run_mha(ours, theirs, q, k, v, **kw)


def test_multihead_attention_unbatched_and_cross_lengths():
    ours, theirs = _pair(nn.MultiheadAttention(6, 3), torch.nn.MultiheadAttention(6, 3))
    _run_mha(ours, theirs, randn(4, 6), randn(7, 6), randn(7, 6))
    _run_mha(ours, theirs, randn(4, 2, 6), randn(7, 2, 6), randn(7, 2, 6),
             attn_mask=randn(2 * 3, 4, 7))  # a 3-D float mask, one per (batch, head)


LAYER_CASES = [
    ("post_norm", dict()),
    ("pre_norm_gelu_batch_first", dict(norm_first=True, activation="gelu", batch_first=True)),
    ("no_bias_callable_activation", dict(bias=False, activation=torch.nn.functional.silu)),
]


def _activation(kw):
    """The same activation object for both sides (callables are framework-specific)."""
    act = kw.get("activation")
    ours = dict(kw)
    if callable(act):
        ours["activation"] = getattr(distbp.nn.functional, act.__name__)
    return ours


@pytest.mark.parametrize("name,kw", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_transformer_encoder_layer_matches_torch(name, kw):
    ours, theirs = _pair(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, **_activation(kw)),
                         torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, **kw))
    x = randn(2, 5, 8) if kw.get("batch_first") else randn(5, 2, 8)
    compare(ours, theirs, x, copy=False, tol=1e-9)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    y = ours(Tensor(x), src_mask=nn.Transformer.generate_square_subsequent_mask(5, dtype=np.float64),
             src_key_padding_mask=KPM, is_causal=True)
    ty = theirs(torch.tensor(x), src_mask=mask, src_key_padding_mask=torch.tensor(KPM), is_causal=True)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-9, atol=1e-11)


def test_transformer_encoder_and_full_transformer_match_torch():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    ours = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2,
                                         norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    ours.layers[1].linear1.weight.data[...] += 0.1  # the copies are independent
    ours, theirs = _pair(ours, theirs)
    compare(ours, theirs, randn(4, 3, 8), copy=False, tol=1e-9)
    ours, theirs = _pair(nn.Transformer(8, 2, 1, 2, 16, dropout=0.0),
                         torch.nn.Transformer(8, 2, 1, 2, 16, dropout=0.0))
    compare(ours, theirs, randn(4, 2, 8), randn(3, 2, 8), copy=False, tol=1e-9)


def test_transformer_decoder_layer_matches_torch():
    ours, theirs = _pair(nn.TransformerDecoderLayer(8, 2, 16, norm_first=True),
                         torch.nn.TransformerDecoderLayer(8, 2, 16, norm_first=True))
    compare(ours, theirs, randn(3, 2, 8), randn(5, 2, 8), copy=False, tol=1e-9)


def test_mha_dropout_in_training_only():
    mha = nn.MultiheadAttention(8, 2, dropout=0.5).double()
    x = Tensor(randn(5, 2, 8))
    distbp.manual_seed(0)
    a, b = mha(x, x, x)[0].data, mha(x, x, x)[0].data
    assert not np.allclose(a, b)
    mha.eval()
    np.testing.assert_array_equal(mha(x, x, x)[0].data, mha(x, x, x)[0].data)


@pytest.mark.parametrize("heads,bias", [(1, True), (4, False)])
def test_causal_self_attention_equals_mha_with_causal_mask(heads, bias):
    ours = nn.CausalSelfAttention(8, heads, bias=bias).double()
    mha = nn.MultiheadAttention(8, heads, bias=bias, batch_first=True).double()
    mha.load_state_dict(ours.state_dict())
    x = Tensor(randn(3, 5, 8))
    want = mha(x, x, x, attn_mask=CAUSAL, need_weights=False)[0]
    np.testing.assert_allclose(ours(x).data, want.data, rtol=1e-12, atol=1e-13)


def test_sdpa_fully_masked_row_gives_zeros_like_torch():
    q = randn(1, 3, 4)
    mask = np.array([[False] * 3, [True, False, True], [True] * 3])
    ours = distbp.nn.functional.scaled_dot_product_attention(Tensor(q), Tensor(q), Tensor(q), mask)
    theirs = torch.nn.functional.scaled_dot_product_attention(*(torch.tensor(q),) * 3,
                                                               attn_mask=torch.tensor(mask))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12, atol=1e-14)


def test_sdpa_dropout_keeps_expectation_and_masks_grads():
    distbp.manual_seed(1)
    q = Tensor(randn(1, 1, 64, 8), requires_grad=True)
    v = Tensor(np.ones((1, 1, 64, 8)))
    out = distbp.nn.functional.scaled_dot_product_attention(q, q, v, dropout_p=0.25)
    assert abs(out.data.mean() - 1.0) < 0.1  # rows of p sum to 1; dropout rescales by 1/(1-p)
    out.sum().backward()
    assert np.isfinite(q.grad).all()


def test_sdpa_errors_name_the_problem():
    q = Tensor(randn(2, 4, 3, 2))
    with pytest.raises(ValueError, match="enable_gqa"):
        distbp.nn.functional.scaled_dot_product_attention(q, Tensor(randn(2, 2, 3, 2)),
                                                          Tensor(randn(2, 2, 3, 2)))
    with pytest.raises(ValueError, match="is_causal"):
        distbp.nn.functional.scaled_dot_product_attention(q, q, q, np.ones((3, 3), bool), is_causal=True)
