"""Tensor API, the backward engine (deep graphs, freeing, hooks), dtypes, grad mode and errors."""
import gc
import weakref

import numpy as np
import pytest

import distbp
from distbp.autograd import Function


def test_readme_example():
    w = distbp.tensor(2.0, requires_grad=True)
    x = distbp.tensor(3.0)
    loss = (w * x - 10) ** 2
    loss.backward()
    assert w.grad == -24


def test_default_dtypes_follow_torch():
    assert distbp.tensor([1.0, 2.0]).dtype == np.float32
    assert distbp.tensor(3).dtype == np.int64
    assert distbp.tensor([1, 2], dtype=distbp.float64).dtype == np.float64
    assert distbp.tensor(np.zeros(2)).dtype == np.float64          # numpy arrays keep their dtype
    assert distbp.randn(2, 3).dtype == np.float32
    assert distbp.zeros(2).dtype == distbp.ones((2, 2)).dtype == np.float32
    assert distbp.arange(3).dtype == np.int64 and distbp.arange(0.0, 1.0, 0.5).dtype == np.float32
    a = distbp.from_numpy(np.ones(3))
    assert a.dtype == np.float64 and np.shares_memory(a.numpy(), a.data)


def test_float32_stays_float32_through_ops():
    x = distbp.randn(4, 3, requires_grad=True)
    y = ((x * 2.5 + 1) ** 2 / 3).exp().log().tanh().mean()
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_float64_end_to_end():
    x = distbp.randn(4, 3, dtype=distbp.float64, requires_grad=True)
    (x.softmax(1) * x).sum().backward()
    assert x.grad.dtype == np.float64


def test_to_and_casts_carry_grad():
    x = distbp.randn(3, requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and x.float() is x
    y.sum().backward()
    assert x.grad.dtype == np.float32 and np.all(x.grad == 1)


def test_requires_grad_on_integer_tensor_names_dtype():
    with pytest.raises(TypeError, match="int64"):
        distbp.tensor([1, 2], requires_grad=True)


def test_basic_properties():
    x = distbp.ones(2, 3)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size() == (2, 3) and x.size(1) == 3
    assert x.numel() == 6 and x.sum().item() == 6.0
    assert x.detach().requires_grad is False
    assert (x.argmax(1).numpy() == 0).all()


def test_no_grad_context_and_decorator():
    x = distbp.randn(3, requires_grad=True)
    with distbp.no_grad():
        assert not distbp.is_grad_enabled()
        y = x * 2
        with distbp.enable_grad():
            z = x * 2
    assert distbp.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None and z.requires_grad

    @distbp.no_grad()
    def f(t):
        return t * 3

    @distbp.no_grad
    def g(t):
        return t * 3

    assert not f(x).requires_grad and not g(x).requires_grad and distbp.is_grad_enabled()


def test_value_used_many_times_accumulates():
    x = distbp.tensor([1.0, 2.0], requires_grad=True)
    y = x * x * x + x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 * x.data ** 2 + 1)


def test_grads_accumulate_across_backward_calls():
    x = distbp.tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad[0] == 5


def test_leaf_grads_do_not_alias():
    a = distbp.randn(3, requires_grad=True)
    b = distbp.randn(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad += 1  # in-place change to one grad (an allreduce does this) must not touch the other
    assert np.all(b.grad == 1)


def test_chain_of_100k_adds_no_recursion_error():
    x = distbp.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0 and y.item() == 100_001


def test_unrolled_recurrence_500_steps():
    w = distbp.randn(4, 4, dtype=distbp.float64, requires_grad=True)
    h = distbp.zeros(1, 4, dtype=distbp.float64)
    x = distbp.randn(500, 1, 4, dtype=distbp.float64)
    for t in range(500):
        h = (h @ (w * 0.1) + x[t]).tanh()
    h.sum().backward()
    assert w.grad.shape == (4, 4) and np.isfinite(w.grad).all()


def test_non_leaf_has_no_grad_unless_retained():
    x = distbp.randn(3, requires_grad=True)
    h = x * 2
    k = x * 3
    k.retain_grad()
    (h + k).sum().backward()
    assert h.grad is None and np.all(k.grad == 1)


def test_graph_is_freed_after_backward():
    x = distbp.randn(3, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h._ctx)
    loss = (h * 2).sum()
    del h
    loss.backward()
    gc.collect()
    assert ref() is None


def test_second_backward_raises_clear_error_and_retain_graph_allows_it():
    x = distbp.randn(3, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * np.exp(x.data), rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_errors():
    with pytest.raises(RuntimeError, match="scalar"):
        distbp.randn(3, requires_grad=True).exp().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        distbp.randn(3).sum().backward()
    x = distbp.randn(3, requires_grad=True)
    y = x * 2
    y.backward(np.ones(3))
    assert np.all(x.grad == 2)


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        distbp.randn(2, 3) @ distbp.randn(4, 5)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 4\)"):
        distbp.nn.functional.linear(distbp.randn(2, 3), distbp.randn(3, 4))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(7,\)"):
        distbp.randn(2, 3).reshape(7)


def test_post_accumulate_grad_hook_fires_as_soon_as_leaf_is_done():
    events = []
    w1 = distbp.randn(3, 3, requires_grad=True)
    w2 = distbp.randn(3, 3, requires_grad=True)
    x = distbp.randn(2, 3)
    h = (x @ w1).tanh()
    y = (h @ w2).tanh() @ w2  # w2 used twice: its hook must wait for both contributions
    handles = [w.register_post_accumulate_grad_hook(
        lambda t, name=name: events.append((name, t.grad.copy(), w1.grad is None)))
        for name, w in (("w1", w1), ("w2", w2))]
    y.sum().backward()
    assert [e[0] for e in events] == ["w2", "w1"]
    assert events[0][2], "w2's hook fired after w1 already had its grad"
    np.testing.assert_allclose(events[0][1], w2.grad)  # complete grad (both uses) at hook time
    handles[1].remove()
    events.clear()
    y2 = (x @ w1 @ w2).sum()
    y2.backward()
    assert [e[0] for e in events] == ["w1"]


def test_custom_function_extension_point():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x, scale=1.0):
            ctx.x, ctx.scale = x, scale
            return scale * x ** 3

        @staticmethod
        def backward(ctx, g):
            return 3 * ctx.scale * ctx.x ** 2 * g

    x = distbp.randn(4, dtype=distbp.float64, requires_grad=True)
    Cube.apply(x, scale=2.0).sum().backward()
    np.testing.assert_allclose(x.grad, 6 * x.data ** 2)
    assert distbp.gradcheck(lambda t: Cube.apply(t, scale=0.5), (distbp.tensor(x.data, requires_grad=True),))


def test_custom_function_wrong_grad_shape_is_reported():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return np.ones(2)

    with pytest.raises(RuntimeError, match=r"Bad.backward.*\(2,\).*\(3,\)"):
        Bad.apply(distbp.randn(3, requires_grad=True)).backward()


def test_no_graph_built_without_requires_grad():
    y = distbp.randn(3) * 2
    assert y._ctx is None and not y.requires_grad


def test_creation_helpers_and_seed():
    distbp.manual_seed(0)
    a = distbp.randn(2, 2)
    distbp.manual_seed(0)
    assert np.array_equal(a.data, distbp.randn(2, 2).data)
    r = distbp.rand(100)
    assert r.dtype == np.float32 and (0 <= r.data).all() and (r.data < 1).all()
    assert distbp.zeros_like(a).shape == (2, 2) and distbp.ones_like(a).sum().item() == 4


def test_max_with_dim_returns_values_and_indices():
    x = distbp.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.max(dim=0).indices.tolist() == [1, 0, 1]
