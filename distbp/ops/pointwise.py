"""Pointwise activations as one primitive with a table of rules (HIPS/autograd style).

Each entry is `name: (forward(a, **kw) -> out, backward(g, a, out, **kw) -> grad)`. One fused numpy
expression per direction is faster than composing Where/Exp/Mul nodes, and the forms below are the
numerically careful ones (logaddexp instead of log(1 + exp), expm1 near zero). Derivatives at the
kinks follow torch (e.g. hardtanh passes no grad at exactly min_val/max_val).

    Pointwise.apply(x, op="softplus", beta=1.0, threshold=20.0)
"""
import numpy as np

from distbp.autograd import Function
from distbp.ops import primitive

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(a):
    e = np.exp(-np.abs(a))  # exp of a non-positive number: no overflow
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


def _softplus(a, beta=1.0, threshold=20.0):
    return np.where(a * beta > threshold, a, np.logaddexp(0, a * beta) / beta).astype(a.dtype, copy=False)


def _elu(a, alpha):
    return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0)))


def _mish_grad(g, a, out):
    tsp = np.tanh(_softplus(a))
    return g * (tsp + a * _sigmoid(a) * (1 - tsp * tsp))


def _between(a, lo, hi):
    return (a > lo) & (a < hi)


RULES = {
    # ---- rectifiers
    "leaky_relu": (lambda a, negative_slope=0.01: np.where(a > 0, a, a * negative_slope),
                   lambda g, a, out, negative_slope=0.01: np.where(a > 0, g, g * negative_slope)),
    "hardtanh": (lambda a, min_val=-1.0, max_val=1.0: np.clip(a, min_val, max_val),
                 lambda g, a, out, min_val=-1.0, max_val=1.0: g * _between(a, min_val, max_val)),
    "threshold": (lambda a, threshold, value: np.where(a > threshold, a, np.asarray(value, a.dtype)),
                  lambda g, a, out, threshold, value: g * (a > threshold)),
    "hardshrink": (lambda a, lambd=0.5: np.where(np.abs(a) > lambd, a, 0).astype(a.dtype, copy=False),
                   lambda g, a, out, lambd=0.5: g * (np.abs(a) > lambd)),
    "softshrink": (lambda a, lambd=0.5: np.where(a > lambd, a - lambd,
                                                 np.where(a < -lambd, a + lambd, 0)).astype(a.dtype, copy=False),
                   lambda g, a, out, lambd=0.5: g * (np.abs(a) > lambd)),
    # ---- exponential family
    "elu": (lambda a, alpha=1.0: _elu(a, alpha),
            lambda g, a, out, alpha=1.0: np.where(a > 0, g, g * (out + alpha))),
    "selu": (lambda a: _SELU_SCALE * _elu(a, _SELU_ALPHA),
             lambda g, a, out: g * np.where(a > 0, _SELU_SCALE, out + _SELU_SCALE * _SELU_ALPHA)),
    "celu": (lambda a, alpha=1.0: np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0) / alpha)),
             lambda g, a, out, alpha=1.0: np.where(a > 0, g, g * np.exp(np.minimum(a, 0) / alpha))),
    "softplus": (_softplus,
                 lambda g, a, out, beta=1.0, threshold=20.0:
                 np.where(a * beta > threshold, g, g * _sigmoid(a * beta))),
    "logsigmoid": (lambda a: -np.logaddexp(0, -a),
                   lambda g, a, out: g * _sigmoid(-a)),
    "log1p": (np.log1p, lambda g, a, out: g / (1 + a)),
    "expm1": (np.expm1, lambda g, a, out: g * (out + 1)),
    # ---- smooth gates
    "silu": (lambda a: a * _sigmoid(a),
             lambda g, a, out: g * (lambda s: s * (1 + a * (1 - s)))(_sigmoid(a))),
    "mish": (lambda a: a * np.tanh(_softplus(a)), _mish_grad),
    "hardsigmoid": (lambda a: np.clip(a / 6 + 0.5, 0, 1),
                    lambda g, a, out: g * _between(a, -3, 3) / 6),
    "hardswish": (lambda a: a * np.clip(a / 6 + 0.5, 0, 1),
                  lambda g, a, out: np.where(a < -3, 0, np.where(a <= 3, g * (a / 3 + 0.5), g))),
    # ---- odd squashers
    "softsign": (lambda a: a / (1 + np.abs(a)),
                 lambda g, a, out: g / (1 + np.abs(a)) ** 2),
    "tanhshrink": (lambda a: a - np.tanh(a),
                   lambda g, a, out: g * np.tanh(a) ** 2),
}


@primitive
class Pointwise(Function):
    """y = RULES[op][0](x, **options); the grad is RULES[op][1](g, x, y, **options)."""

    @staticmethod
    def forward(ctx, a, op, **options):
        try:
            fwd = RULES[op][0]
        except KeyError:
            raise ValueError(f"Pointwise: unknown op {op!r}; known: {', '.join(sorted(RULES))}") from None
        out = np.asarray(fwd(a, **options)).astype(a.dtype, copy=False)
        ctx.a, ctx.out, ctx.op, ctx.options = a, out, op, options
        return out

    @staticmethod
    def backward(ctx, g):
        grad = RULES[ctx.op][1](g, ctx.a, ctx.out, **ctx.options)
        return np.asarray(grad).astype(g.dtype, copy=False)
