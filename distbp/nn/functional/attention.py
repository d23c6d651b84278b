"""scaled_dot_product_attention (one fused primitive) and multi_head_attention_forward (torch's
nn.MultiheadAttention computation, same parameter layout and mask conventions).

Mask conventions differ between the two, as in torch: for scaled_dot_product_attention a bool
attn_mask is True where attention is ALLOWED; for multi-head attention's attn_mask and
key_padding_mask a bool True means the position is MASKED OUT. Float masks are added to the scores.
"""
import math

import numpy as np

from distbp import random as _random
from distbp.ops.attention import ScaledDotProductAttention
from distbp.tensor import Tensor, cat

from .activation import softmax
from .conv import linear
from .dropout import dropout


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 *, scale=None, enable_gqa=False):
    """query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).

    Like torch, dropout_p is applied whenever it is > 0 (pass 0.0 in eval mode)."""
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)} must have the same "
                         f"number (>= 2) of dims")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)} do not fit "
                         f"(need query (..., L, E), key (..., S, E), value (..., S, Ev))")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: explicit attn_mask should not be set when "
                         "is_causal=True")
    rep = 1
    if query.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if not enable_gqa or hq % hk or value.shape[-3] != hk:
            raise ValueError(f"scaled_dot_product_attention: query has {hq} heads but key/value "
                             f"{hk}/{value.shape[-3]}; pass enable_gqa=True with query heads a "
                             f"multiple of key/value heads")
        rep = hq // hk
    if attn_mask is not None and not isinstance(attn_mask, Tensor):
        attn_mask = np.asarray(attn_mask)
    if attn_mask is not None and attn_mask.dtype != np.bool_ and attn_mask.dtype != query.dtype:
        attn_mask = attn_mask.to(query.dtype) if isinstance(attn_mask, Tensor) else \
            attn_mask.astype(query.dtype)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    keep = None
    if dropout_p > 0:
        shape = tuple(np.broadcast_shapes(query.shape[:-1], key.shape[:-2] + (1,))) + (key.shape[-2],)
        keep = _random.uniform_rows(shape, query.dtype) >= dropout_p
    return ScaledDotProductAttention.apply(query, key, value, attn_mask, scale=scale,
                                           is_causal=is_causal, dropout_p=dropout_p, keep=keep,
                                           gqa_rep=rep)


# ---------------------------------------------------------------- multi-head attention

def _additive(mask, dtype, what):
    """A bool (True = masked out) or float mask as an additive float array."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype == np.bool_:
        return np.where(m, -np.inf, 0.0).astype(dtype)
    if m.dtype.kind != "f":
        raise TypeError(f"multi_head_attention_forward: {what} must be bool or float, got {m.dtype}")
    return m.astype(dtype, copy=False)


def _in_projection(query, key, value, e, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                   q_proj_weight, k_proj_weight, v_proj_weight):
    b = [None] * 3 if in_proj_bias is None else [in_proj_bias[i * e:(i + 1) * e] for i in range(3)]
    if use_separate_proj_weight:
        return (linear(query, q_proj_weight, b[0]), linear(key, k_proj_weight, b[1]),
                linear(value, v_proj_weight, b[2]))
    if query is key and key is value:  # self-attention: one (3E, E) product
        qkv = linear(query, in_proj_weight, in_proj_bias)
        return qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
    w = [in_proj_weight[i * e:(i + 1) * e] for i in range(3)]
    return linear(query, w[0], b[0]), linear(key, w[1], b[1]), linear(value, w[2], b[2])


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                                 out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """query (L, N, E), key (S, N, Ek), value (S, N, Ev) (or unbatched without N) ->
    (output (L, N, E), weights (N, L, S) averaged over heads, (N, H, L, S), or None)."""
    if static_k is not None or static_v is not None:
        raise ValueError("multi_head_attention_forward: static_k/static_v are not supported")
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = np.asarray(getattr(key_padding_mask, "data", key_padding_mask))[None]
    L, n, e = query.shape
    if e != embed_dim_to_check:
        raise ValueError(f"multi_head_attention_forward: query of shape {tuple(query.shape)} has "
                         f"embed dim {e}, expected {embed_dim_to_check}")
    if e % num_heads:
        raise ValueError(f"multi_head_attention_forward: embed_dim {e} not divisible by "
                         f"num_heads {num_heads}")
    if is_causal and attn_mask is None:
        raise ValueError("multi_head_attention_forward: need attn_mask if specifying the "
                         "is_causal hint (pass e.g. nn.Transformer.generate_square_subsequent_mask)")
    h, hd = num_heads, e // num_heads
    dt = query.dtype
    q, k, v = _in_projection(query, key, value, e, in_proj_weight, in_proj_bias,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight)
    mask = None if attn_mask is None else _additive(attn_mask, dt, "attn_mask")
    if mask is not None and mask.ndim == 3:                          # (N*H, L, S)
        mask = mask.reshape(n, h, L, mask.shape[-1])
    kpm = None if key_padding_mask is None else _additive(key_padding_mask, dt, "key_padding_mask")
    if bias_k is not None and bias_v is not None:
        k = cat([k, bias_k.expand(1, n, e)])
        v = cat([v, bias_v.expand(1, n, e)])
        mask = None if mask is None else np.concatenate(
            [mask, np.zeros(mask.shape[:-1] + (1,), dt)], -1)
        kpm = None if kpm is None else np.concatenate([kpm, np.zeros((n, 1), dt)], -1)
    # heads: (len, N, E) -> (N, H, len, hd)
    q = q.reshape(L, n, h, hd).permute(1, 2, 0, 3)
    k = k.reshape(k.shape[0], n, h, hd).permute(1, 2, 0, 3)
    v = v.reshape(v.shape[0], n, h, hd).permute(1, 2, 0, 3)
    if add_zero_attn:
        k = cat([k, Tensor(np.zeros((n, h, 1, hd), dt))], dim=2)
        v = cat([v, Tensor(np.zeros((n, h, 1, hd), dt))], dim=2)
        mask = None if mask is None else np.concatenate(
            [mask, np.zeros(mask.shape[:-1] + (1,), dt)], -1)
        kpm = None if kpm is None else np.concatenate([kpm, np.zeros((n, 1), dt)], -1)
    if kpm is not None:
        kpm = kpm.reshape(n, 1, 1, -1)
        mask = kpm if mask is None else mask + kpm
    p = dropout_p if training else 0.0
    if need_weights:
        scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)   # (N, H, L, S)
        if mask is not None:
            scores = scores + Tensor(mask)
        weights = softmax(scores, dim=-1)
        if p > 0:
            weights = dropout(weights, p)
        out = weights @ v                                             # (N, H, L, hd)
        weights = weights.mean(1) if average_attn_weights else weights
    else:
        out = scaled_dot_product_attention(q, k, v, mask, p)
        weights = None
    out = linear(out.permute(2, 0, 1, 3).reshape(L, n, e), out_proj_weight, out_proj_bias)
    if unbatched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights
