"""CausalSelfAttention: GPT-style multi-head self-attention where position t sees positions <= t.

Parameters are named and laid out like torch.nn.MultiheadAttention, so a state_dict copies into
`torch.nn.MultiheadAttention(E, heads, batch_first=True)` and, with a causal attn_mask, gives the
same outputs:
    in_proj_weight (3E, E) rows [q | k | v], in_proj_bias (3E,), out_proj.weight (E, E), out_proj.bias
"""
import math

import numpy as np

from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn.linear import Linear
from distbp.nn.module import Module, Parameter


class CausalSelfAttention(Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, dtype=None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"CausalSelfAttention: embed_dim={embed_dim} is not divisible by "
                             f"num_heads={num_heads}")
        dtype = np.dtype(dtype or np.float32)
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self._masks = {}  # T -> additive (T, T) mask, 0 on/below the diagonal, -inf above
        self.reset_parameters()

    def reset_parameters(self):
        # torch.nn.MultiheadAttention's init
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _mask(self, T, dtype):
        key = (T, np.dtype(dtype))
        if key not in self._masks:
            self._masks[key] = np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)
        return self._masks[key]

    def forward(self, x):
        """x (B, T, E) -> (B, T, E)."""
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"CausalSelfAttention: expected input (B, T, {self.embed_dim}), got "
                             f"shape {tuple(x.shape)}")
        B, T, E = x.shape
        nh, hd = self.num_heads, self.head_dim
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)         # (B, T, 3E)
        qkv = qkv.reshape(B, T, 3, nh, hd).permute(2, 0, 3, 1, 4)         # (3, B, nh, T, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]                                  # (B, nh, T, hd)
        att = (q @ k.permute(0, 1, 3, 2)) * (1.0 / math.sqrt(hd))        # (B, nh, T, T)
        att = F.softmax(att + self._mask(T, x.data.dtype), dim=-1)
        if self.dropout and self.training:
            att = F.dropout(att, p=self.dropout, training=True)
        y = (att @ v).permute(0, 2, 1, 3).reshape(B, T, E)               # (B, T, E)
        return self.out_proj(y)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
