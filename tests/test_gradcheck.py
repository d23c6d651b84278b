import numpy as np
import pytest

import distbp
from distbp.autograd import Function


def _x(*shape):
    return distbp.randn(*shape, dtype=distbp.float64, requires_grad=True)


def test_gradcheck_passes_for_correct_ops():
    assert distbp.gradcheck(lambda a, b: (a @ b).tanh(), (_x(2, 3), _x(3, 2)))


def test_gradcheck_catches_wrong_backward_and_names_the_input():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g * ctx.x  # should be 2 * x

    with pytest.raises(AssertionError, match="input 0"):
        distbp.gradcheck(lambda a: WrongSquare.apply(a), (_x(3),))


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float32"):
        distbp.gradcheck(lambda a: a * 2, (distbp.randn(3, requires_grad=True),))


def test_gradcheck_skips_non_grad_inputs_and_handles_multiple_outputs():
    c = distbp.tensor(np.array([1.0, 2.0]))
    assert distbp.gradcheck(lambda a, c: (a * c, a.exp()), (_x(2), c))
