"""Character-level language models: a GRU and a small causal-attention transformer.
Input (B, T) int token ids -> logits (B, T, vocab)."""
import numpy as np

import distbp
from distbp import nn


class GRULM(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden, layers, dropout=0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden, num_layers=layers, batch_first=True)
        self.drop = nn.Dropout(dropout) if dropout else None
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx):                   # (B, T)
        h, _ = self.rnn(self.embed(idx))      # (B, T, H)
        if self.drop is not None:
            h = self.drop(h)
        return self.head(h)                   # (B, T, V)

    @classmethod
    def from_config(cls, m, meta):
        hidden = m["hidden"][0] if m["hidden"] else m["embed_dim"]
        return cls(meta["vocab_size"], m["embed_dim"], hidden, m["layers"], m["dropout"])


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.CausalSelfAttention(dim, heads, dropout=dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):                     # (B, T, C)
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class AttentionLM(nn.Module):
    def __init__(self, vocab_size, block_size, dim, heads, layers, dropout=0.0):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(block_size, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, idx):                   # (B, T)
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(distbp.tensor(np.arange(T)))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))          # (B, T, V)

    @classmethod
    def from_config(cls, m, meta):
        return cls(meta["vocab_size"], meta["block_size"], m["embed_dim"], m["num_heads"],
                   m["layers"], m["dropout"])
