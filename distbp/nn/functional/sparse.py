"""embedding (padding_idx, max_norm, scale_grad_by_freq), embedding_bag, one_hot."""
import numpy as np

from distbp.autograd import no_grad
from distbp.tensor import Tensor, where

from ._utils import data


def _indices(input, num, what):
    idx = data(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{what}: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num):
        raise IndexError(f"{what}: index out of range [0, {num}) (min {idx.min()}, max {idx.max()})")
    return idx


def _padding_idx(padding_idx, num, what):
    if padding_idx is None:
        return None
    if not -num <= padding_idx < num:
        raise ValueError(f"{what}: padding_idx {padding_idx} must be within [-{num}, {num})")
    return padding_idx + num if padding_idx < 0 else padding_idx


def _renorm_(weight, idx, max_norm, norm_type):
    """torch's embedding_renorm_: rows looked up whose norm exceeds max_norm are scaled down in
    place (outside autograd) to norm max_norm."""
    rows = np.unique(idx)
    w = weight.data
    norms = np.linalg.norm(w[rows], ord=norm_type, axis=1)
    big = norms > max_norm
    w[rows[big]] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(w.dtype)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of weight (num_embeddings, dim) picked by the integer indices in input; rows at
    padding_idx get no gradient."""
    if sparse:
        raise ValueError("embedding: sparse=True (sparse gradients) is not supported; use the "
                         "default dense gradient")
    num = weight.shape[0]
    idx = _indices(input, num, "embedding")
    padding_idx = _padding_idx(padding_idx, num, "embedding")
    if max_norm is not None:
        with no_grad():
            _renorm_(weight, idx, max_norm, norm_type)
    out = weight[idx]
    if scale_grad_by_freq:  # grad of row r divided by how often r occurs in this batch
        counts = np.bincount(idx.reshape(-1), minlength=num)
        scale = (1.0 / counts[idx]).astype(out.dtype)[..., None]
        out = out * scale + (out * (1 - scale)).detach()
    if padding_idx is not None:
        keep = (idx != padding_idx)[..., None]
        out = where(keep, out, out.detach())
    return out


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                  padding_idx=None):
    """Sum/mean/max of the embeddings of each bag: input (B, L) (one bag per row) or 1-D with
    offsets (bag starts)."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError("embedding_bag: per_sample_weights is only supported for mode='sum'")
    idx = data(input)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None for a 2-D input")
        starts = np.arange(0, idx.size, idx.shape[1])
        idx = idx.reshape(-1)
        psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    else:
        starts = data(offsets).astype(np.int64)
        if include_last_offset:
            starts = starts[:-1]
        psw = per_sample_weights
    num = weight.shape[0]
    padding_idx = _padding_idx(padding_idx, num, "embedding_bag")
    rows = embedding(Tensor(idx), weight, max_norm=max_norm, norm_type=norm_type,
                     scale_grad_by_freq=scale_grad_by_freq)
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    keep = np.ones(idx.shape, dtype=bool) if padding_idx is None else idx != padding_idx
    ends = list(starts[1:]) + [idx.size]
    bags = []
    for s, e in zip(starts, ends):
        sel = np.arange(s, e)[keep[s:e]]
        if sel.size == 0:
            bags.append(Tensor(np.zeros(weight.shape[1], dtype=weight.dtype)))
        elif mode == "sum":
            bags.append(rows[sel].sum(0))
        elif mode == "mean":
            bags.append(rows[sel].mean(0))
        else:
            bags.append(rows[sel].amax(0))
    from distbp.tensor import stack
    return stack(bags)


def one_hot(tensor, num_classes=-1):
    """int64 (..., num_classes) with a 1 at each index (num_classes -1: max index + 1)."""
    idx = data(tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got min "
                         f"{idx.min()}, max {idx.max()}")
    return Tensor(np.eye(num_classes, dtype=np.int64)[idx])
