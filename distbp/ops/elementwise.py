"""Elementwise primitives. Binary ops broadcast like numpy; `unbroadcast` sums grads back down."""
import numpy as np

from distbp.autograd import Function, unbroadcast
from distbp.ops import primitive

try:  # exact erf for gelu; scipy is optional, math.erf vectorised is the (slow, exact) fallback
    from scipy.special import erf as _erf
    _ERF_OUT = True  # a ufunc: can write in place
except ImportError:  # pragma: no cover
    import math
    _erf = np.vectorize(math.erf, otypes=[np.float64])
    _ERF_OUT = False


def _shape(x):
    return np.shape(x)


# ---------------------------------------------------------------- binary

@primitive
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.sa, ctx.sb = _shape(a), _shape(b)
        return a + b

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (unbroadcast(g, ctx.sa) if n[0] else None,
                unbroadcast(g, ctx.sb) if n[1] else None)


@primitive
class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.sa, ctx.sb = _shape(a), _shape(b)
        return a - b

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (unbroadcast(g, ctx.sa) if n[0] else None,
                -unbroadcast(g, ctx.sb) if n[1] else None)


@primitive
class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        n = ctx.needs_input_grad
        return (unbroadcast(g * b, _shape(a)) if n[0] else None,
                unbroadcast(g * a, _shape(b)) if n[1] else None)


@primitive
class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        n = ctx.needs_input_grad
        ga = g / b
        return (unbroadcast(ga, _shape(a)) if n[0] else None,
                unbroadcast(-ga * a / b, _shape(b)) if n[1] else None)


@primitive
class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.a, ctx.b, ctx.out = a, b, out
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.a, ctx.b, ctx.out
        n = ctx.needs_input_grad
        ga = gb = None
        if n[0]:
            ga = unbroadcast(g * b * a ** (b - 1), _shape(a))
        if n[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
            gb = unbroadcast(g * out * logs, _shape(b))
        return ga, gb


@primitive
class Where(Function):
    """where(cond, a, b); cond is a constant bool array, both branches get (masked) grads."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond, ctx.sa, ctx.sb = cond, _shape(a), _shape(b)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        zero = np.zeros((), dtype=g.dtype)
        return (None,
                unbroadcast(np.where(ctx.cond, g, zero), ctx.sa) if n[1] else None,
                unbroadcast(np.where(ctx.cond, zero, g), ctx.sb) if n[2] else None)


# ---------------------------------------------------------------- unary

@primitive
class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


@primitive
class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.out = np.exp(a)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.out


@primitive
class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.a


@primitive
class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.out = np.sqrt(a)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.out)


@primitive
class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * np.sign(ctx.a)


@primitive
class Clip(Function):
    """clamp(min, max); like torch the grad passes where min <= a <= max."""

    @staticmethod
    def forward(ctx, a, min=None, max=None):
        mask = None
        if min is not None:
            mask = a >= min
        if max is not None:
            mask = (a <= max) if mask is None else mask & (a <= max)
        ctx.mask = mask
        return np.clip(a, min, max) if mask is not None else a.copy()

    @staticmethod
    def backward(ctx, g):
        return g if ctx.mask is None else g * ctx.mask


@primitive
class Relu(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.maximum(a, 0)
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.out > 0)


@primitive
class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.out = np.tanh(a)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        out = ctx.out
        return g * (1 - out * out)


@primitive
class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        # exp of a non-positive number only: no overflow for large |a|
        e = np.exp(-np.abs(a))
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e))
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.out
        return g * out * (1 - out)


_SQRT1_2 = 0.7071067811865476
_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT_2PI = 0.3989422804014327


@primitive
class Gelu(Function):
    """gelu(x) = x * Phi(x) (approximate='none', torch default) or the tanh approximation."""

    @staticmethod
    def forward(ctx, a, approximate="none"):
        ctx.a, ctx.approximate = a, approximate
        if approximate == "tanh":
            ctx.t = np.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a ** 3))
            return 0.5 * a * (1 + ctx.t)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        cdf = a * np.asarray(_SQRT1_2, dtype=a.dtype)   # in place from here: each temporary
        cdf = _erf(cdf, out=cdf) if _ERF_OUT else _erf(cdf)              # of this size costs
        cdf += 1                                                         # a pass + page faults
        cdf *= 0.5
        ctx.cdf = cdf.astype(a.dtype, copy=False)
        return a * ctx.cdf

    @staticmethod
    def backward(ctx, g):
        a = ctx.a
        if ctx.approximate == "tanh":
            t = ctx.t
            inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * inner)
        d = a * a                                      # d/da [a Phi(a)] = Phi(a) + a phi(a)
        d *= -0.5
        np.exp(d, out=d)
        d *= np.asarray(_INV_SQRT_2PI, dtype=d.dtype)
        d *= a
        d += ctx.cdf
        d *= g
        return d
