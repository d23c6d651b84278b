"""Embedding: a (num_embeddings, embedding_dim) table indexed by integer ids; init N(0, 1)."""
import numpy as np

from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn.module import Module, Parameter
from distbp.tensor import Tensor, where


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim),
                                         dtype=np.dtype(dtype or np.float32)))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, ids):
        out = F.embedding(ids, self.weight)
        if self.padding_idx is None:
            return out
        # rows looked up at padding_idx get no gradient (torch): same values, detached there
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        keep = (ids != self.padding_idx)[..., None]
        return where(keep, out, out.detach())

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
