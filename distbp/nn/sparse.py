"""Embedding and EmbeddingBag: a (num_embeddings, embedding_dim) table indexed by integer ids;
init N(0, 1), the padding_idx row zero and without gradient, like torch."""
import numpy as np

from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn._factory import factory_dtype
from distbp.nn.module import Module, Parameter
from distbp.tensor import Tensor


def _padding_idx(padding_idx, num_embeddings, what):
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{what}: padding_idx {padding_idx} must be within num_embeddings "
                         f"{num_embeddings}")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def _table(module, num_embeddings, embedding_dim, _weight, _freeze, device, dtype, what):
    if _weight is None:
        module.weight = Parameter(np.empty((num_embeddings, embedding_dim),
                                           dtype=factory_dtype(device, dtype, what)),
                                  requires_grad=not _freeze)
        module.reset_parameters()
    else:
        w = _weight.data if isinstance(_weight, Tensor) else np.asarray(_weight)
        if w.shape != (num_embeddings, embedding_dim):
            raise ValueError(f"{what}: _weight of shape {w.shape} does not match "
                             f"({num_embeddings}, {embedding_dim})")
        module.weight = Parameter(w, requires_grad=not _freeze)


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False,
                 device=None, dtype=None):
        super().__init__()
        if sparse:
            raise ValueError("Embedding: sparse=True (sparse gradients) is not supported")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = _padding_idx(padding_idx, num_embeddings, "Embedding")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        _table(self, num_embeddings, embedding_dim, _weight, _freeze, device, dtype, "Embedding")

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s


class EmbeddingBag(Module):
    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        super().__init__()
        if sparse:
            raise ValueError("EmbeddingBag: sparse=True (sparse gradients) is not supported")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = _padding_idx(padding_idx, num_embeddings, "EmbeddingBag")
        _table(self, num_embeddings, embedding_dim, _weight, False, device, dtype, "EmbeddingBag")

    reset_parameters = Embedding.reset_parameters

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.mode, self.sparse, per_sample_weights,
                               self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}, mode='{self.mode}'"
