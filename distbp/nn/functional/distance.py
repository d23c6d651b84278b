"""cosine_similarity, pairwise_distance, pdist (torch's formulas, composed)."""
import numpy as np


def _norm(x, p, dim, keepdim=False):
    if p == 2:
        return (x * x).sum(dim, keepdim).sqrt()
    if p == 1:
        return x.abs().sum(dim, keepdim)
    if np.isinf(p):
        return x.abs().amax(dim, keepdim)
    return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum((x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps))) over dim."""
    n1 = _norm(x1, 2, dim, keepdim=True).clamp(min=eps)
    n2 = _norm(x2, 2, dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim."""
    return _norm(x1 - x2 + eps, p, max(x1.ndim, x2.ndim) - 1, keepdim)


def pdist(input, p=2):
    """Distances between all row pairs i < j of input (N, M), in row-major order: (N*(N-1)/2,)."""
    if input.ndim != 2:
        raise ValueError(f"pdist: expected a 2-D input (N, M), got shape {tuple(input.shape)}")
    i, j = np.triu_indices(input.shape[0], k=1)
    return _norm(input[i] - input[j], p, 1)
