"""The closed set of primitive ops. Each is one `Function` subclass, forward and backward side by side.

Everything else in distbp (mean, var, softmax callers, cross_entropy, dropout, embedding ...) is
composed from these in distbp/tensor.py and distbp/nn/functional.py and owns no backward.
Add a primitive only when composing would be slow or numerically poor.

    elementwise.py  Add Sub Mul Div Pow Neg Exp Log Sqrt Abs Clip Relu Tanh Sigmoid Gelu Where
    reduce.py       Sum Max
    movement.py     Reshape Permute Expand GetItem Cat
    linalg.py       MatMul Linear
    nn.py           LogSoftmax Softmax MaxPool2d AvgPool2d BatchNorm LayerNorm
    conv.py         Conv2d ConvTranspose2d Im2Col Col2Im
    pointwise.py    Pointwise (one table of activation rules: elu, softplus, mish, hardswish ...)
    attention.py    ScaledDotProductAttention
    padding.py      ConstantPad
    index.py        SetItem
    math.py         Sin Cos Cumsum
    linear_ce.py    LinearCrossEntropy (chunked: never holds the (N, C) logits)
"""

REGISTRY = {}


def primitive(cls):
    """Register a Function subclass as a built-in primitive (once, by name)."""
    if cls.__name__ in REGISTRY:
        raise ValueError(f"primitive {cls.__name__!r} registered twice")
    REGISTRY[cls.__name__] = cls
    return cls


from distbp.ops import elementwise, linalg, movement, nn, reduce  # noqa: E402,F401  (fills REGISTRY)
from distbp.ops import attention, conv, padding, pointwise  # noqa: E402,F401
from distbp.ops import index, math  # noqa: E402,F401
from distbp.ops import linear_ce  # noqa: E402,F401
