"""The torch.* functions over tensors that are methods too (torch.add(x, y) == x.add(y)), with
torch's signatures; re-exported by distbp/__init__.py. Each is one line onto the Tensor method, so
the maths (and its backward) lives in one place."""
import numpy as np

from distbp.tensor import Tensor, _as_tensor, _binary, _data, _unary, dim_alias


def add(input, other, *, alpha=1):
    return _as_tensor(input).add(other, alpha=alpha)


def sub(input, other, *, alpha=1):
    return _as_tensor(input).sub(other, alpha=alpha)


subtract = sub


def mul(input, other):
    return _as_tensor(input) * other


multiply = mul


def div(input, other, *, rounding_mode=None):
    return _as_tensor(input).div(other, rounding_mode=rounding_mode)


divide = div


def true_divide(input, other):
    return _as_tensor(input) / other


def floor_divide(input, other):
    return _as_tensor(input) // other


def remainder(input, other):
    return _as_tensor(input) % other


def pow(input, exponent):
    return _as_tensor(input) ** exponent


def neg(input):
    return -input


negative = neg


def mm(input, mat2):
    return input @ mat2


def bmm(input, mat2):
    return input @ mat2


def outer(input, vec2):
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


def dot(input, tensor):
    return (input * tensor).sum()


# ---------------------------------------------------------------- pointwise

sin, cos, sign, floor, ceil, trunc, log2, log10, log1p, expm1, rsqrt, square, reciprocal, isnan, \
    isinf, isfinite = (_unary(n, __name__) for n in (
        "sin", "cos", "sign", "floor", "ceil", "trunc", "log2", "log10", "log1p", "expm1",
        "rsqrt", "square", "reciprocal", "isnan", "isinf", "isfinite"))


def round(input, *, decimals=0):
    return input.round(decimals=decimals)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return Tensor(np.isclose(_data(input), _data(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.allclose(_data(input), _data(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


equal, eq, ne, lt, le, gt, ge, logical_and, logical_or = (_binary(n, __name__) for n in (
    "equal", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or"))


def logical_not(input):
    return input.logical_not()


# ---------------------------------------------------------------- reductions

@dim_alias
def var(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    return input.var(dim, unbiased, keepdim, correction=correction)


@dim_alias
def std(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    return input.std(dim, unbiased, keepdim, correction=correction)


@dim_alias
def max(input, dim=None, keepdim=False):
    return input.max(dim, keepdim)


@dim_alias
def min(input, dim=None, keepdim=False):
    return input.min(dim, keepdim)


@dim_alias
def amax(input, dim=(), keepdim=False):
    return input.amax(dim, keepdim)


@dim_alias
def amin(input, dim=(), keepdim=False):
    return input.amin(dim, keepdim)


@dim_alias
def argmin(input, dim=None, keepdim=False):
    return input.argmin(dim, keepdim)


@dim_alias
def logsumexp(input, dim, keepdim=False):
    return input.logsumexp(dim, keepdim)


def norm(input, p="fro", dim=None, keepdim=False, *, dtype=None):
    return input.norm(p, dim, keepdim, dtype)


@dim_alias
def cumsum(input, dim, *, dtype=None):
    return input.cumsum(dim, dtype=dtype)


@dim_alias
def prod(input, dim=None, keepdim=False, *, dtype=None):
    return input.prod(dim, keepdim, dtype=dtype)


@dim_alias
def any(input, dim=None, keepdim=False):
    return input.any(dim, keepdim)


@dim_alias
def all(input, dim=None, keepdim=False):
    return input.all(dim, keepdim)


@dim_alias
def count_nonzero(input, dim=None):
    return input.count_nonzero(dim)


# ---------------------------------------------------------------- shape and selection

def reshape(input, shape):
    return input.reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def unflatten(input, dim, sizes):
    return input.unflatten(dim, sizes)


def squeeze(input, dim=None):
    return input.squeeze(dim)


def unsqueeze(input, dim):
    return input.unsqueeze(dim)


def transpose(input, dim0, dim1):
    return input.transpose(dim0, dim1)


swapdims = transpose


def swapaxes(input, axis0, axis1):
    return input.transpose(axis0, axis1)


def t(input):
    return input.t()


def permute(input, dims):
    return input.permute(dims)


def movedim(input, source, destination):
    return input.movedim(source, destination)


moveaxis = movedim


def flip(input, dims):
    return input.flip(dims)


def roll(input, shifts, dims=None):
    return input.roll(shifts, dims)


def broadcast_to(input, size):
    return input.expand(size)


def split(tensor, split_size_or_sections, dim=0):
    return tensor.split(split_size_or_sections, dim)


def chunk(input, chunks, dim=0):
    return input.chunk(chunks, dim)


def tensor_split(input, indices_or_sections, dim=0):
    return input.tensor_split(indices_or_sections, dim)


def unbind(input, dim=0):
    return input.unbind(dim)


def narrow(input, dim, start, length):
    return input.narrow(dim, start, length)


def select(input, dim, index):
    return input.select(dim, index)


def tril(input, diagonal=0):
    return input.tril(diagonal)


def triu(input, diagonal=0):
    return input.triu(diagonal)


def gather(input, dim, index):
    return input.gather(dim, index)


def take_along_dim(input, indices, dim=None):
    return input.take_along_dim(indices, dim)


def index_select(input, dim, index):
    return input.index_select(dim, index)


def masked_select(input, mask):
    return input.masked_select(mask)


def masked_fill(input, mask, value):
    return input.masked_fill(mask, value)


def nonzero(input, *, as_tuple=False):
    return input.nonzero(as_tuple=as_tuple)


def sort(input, dim=-1, descending=False, *, stable=False):
    return input.sort(dim, descending, stable=stable)


def argsort(input, dim=-1, descending=False, *, stable=False):
    return input.argsort(dim, descending, stable=stable)


def topk(input, k, dim=-1, largest=True, sorted=True):
    return input.topk(k, dim, largest, sorted)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    return input.multinomial(num_samples, replacement, generator=generator)


def bernoulli(input, *, generator=None):
    return input.bernoulli(generator=generator)


def clone(input, *, memory_format=None):
    return input.clone()


def detach(input):
    return input.detach()


def numel(input):
    return input.numel()


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.is_floating_point()


def as_tensor(data, *, dtype=None, device=None):
    """Like torch: no copy when `data` already is a Tensor / numpy array of that dtype."""
    from distbp.dtypes import as_dtype, check_device
    check_device(device)
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or as_dtype(dtype) == data.dtype):
        return Tensor(data)
    from distbp.tensor import tensor
    return tensor(data, dtype=dtype)


def einsum(equation, *operands):
    """einsum over two operands or one, composed from permute/reshape/matmul-free broadcasting:
    the operands are aligned on one shared index order, multiplied, and summed."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum: '...' is not supported yet; spell the dims out")
    lhs, _, rhs = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(operands):
        raise ValueError(f"einsum: {len(subs)} operands in {equation!r}, {len(operands)} given")
    if not _:
        rhs = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
    letters = list(dict.fromkeys(rhs + "".join(subs)))
    prod_ = None
    for s, x in zip(subs, operands):
        if len(set(s)) != len(s):
            raise NotImplementedError(f"einsum: repeated index in {s!r} (diagonals) is not supported")
        order = sorted(range(len(s)), key=lambda i: letters.index(s[i]))
        x = x.permute([*order]) if order != list(range(len(s))) else x
        shape, k = [], 0
        for c in letters:
            if c in s:
                shape.append(x.shape[k])
                k += 1
            else:
                shape.append(1)
        x = x.reshape(shape)
        prod_ = x if prod_ is None else prod_ * x
    summed = tuple(i for i, c in enumerate(letters) if c not in rhs)
    out = prod_.sum(summed) if summed else prod_
    return out


__all__ = [n for n, v in list(globals().items())
           if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == __name__]
