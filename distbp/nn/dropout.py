"""Dropout: zeroes elements with probability p in training mode, scales the rest by 1/(1-p)."""
from distbp.nn import functional as F
from distbp.nn.module import Module


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p={p} must be in [0, 1]")
        self.p = p

    def forward(self, x):
        return F.dropout(x, p=self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"
