"""Argument helpers shared by the nn.functional families: int-or-tuple arguments, the legacy
size_average/reduce flags, loss reduction and shape checks."""
import warnings

import numpy as np

from distbp.tensor import Tensor


def ntuple(v, n, name):
    """An int (or 1-tuple) repeated n times, or an n-tuple of ints."""
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a {n}-tuple, got {v}")
    return v


def data(x):
    """The numpy array behind a Tensor (or x itself as an array)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def expect_ndim(x, ndims, what, layout):
    if x.ndim not in ndims:
        raise ValueError(f"{what}: expected input {layout}, got shape {tuple(x.shape)}")


def legacy_reduction(size_average, reduce, reduction):
    """torch's _Reduction.legacy_get_string: the deprecated flags win over `reduction` when set."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                  f"{_legacy(size_average, reduce)}' instead.", stacklevel=3)
    return _legacy(size_average, reduce)


def _legacy(size_average, reduce):
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def reduce_loss(loss, reduction, what="loss"):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{what}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def same_shape(input, target, what):
    """Losses comparing input and target elementwise: torch only warns on a shape mismatch and
    broadcasts, which is almost always a bug ((N, 1) vs (N,) gives an (N, N) loss); we raise."""
    ts = tuple(np.shape(data(target)))
    if ts != tuple(input.shape):
        raise ValueError(f"{what}: input of shape {tuple(input.shape)} and target of shape {ts} "
                         f"differ; reshape one of them (torch would broadcast them silently)")
