"""The torch.* namespace and Tensor methods added for ports: each differentiable op against torch
autograd in float64 (and finite differences) through tests/opcheck.py, one line per op; the
non-differentiable ones against torch's values; in-place semantics and dtypes/devices."""
import numpy as np
import pytest
import torch

import distbp
from tests.opcheck import check, const, pos

M = np.random.default_rng(3).standard_normal((4, 5))


@pytest.mark.parametrize("fn, specs", [
    (lambda m, x: m.tril(x), [(4, 5)]),
    (lambda m, x: m.triu(x, 1), [(4, 5)]),
    (lambda m, x: x.tril(-1) + x.triu(2), [(3, 4, 4)]),
    (lambda m, x: m.split(x, 2, dim=1), [(3, 5)]),
    (lambda m, x: m.split(x, [1, 3], 0), [(4, 2)]),
    (lambda m, x: x.chunk(3, 1), [(2, 7)]),
    (lambda m, x: x.unbind(1), [(2, 3)]),
    (lambda m, x: x.masked_fill(m.tensor(M > 0), -1.5), [(4, 5)]),
    (lambda m, x, v: x.masked_fill(m.tensor(M > 0), v), [(4, 5), ()]),
    (lambda m, x: m.topk(x, 3, dim=1).values, [(4, 5)]),
    (lambda m, x: x.topk(2, largest=False)[0], [(4, 5)]),
    (lambda m, x: m.sort(x, 0, descending=True).values, [(4, 5)]),
    (lambda m, x: x.sort().values, [(4, 5)]),
    (lambda m, x, y: m.where(m.tensor(M > 0), x, y), [(4, 5), (1, 5)]),
    (lambda m, x: m.flip(x, (0, 1)), [(4, 5)]),
    (lambda m, x: x.flip(-1), [(4, 5)]),
    (lambda m, x: m.clamp(x, min=-0.5, max=0.5), [(4, 5)]),
    (lambda m, x, lo: m.clamp(x, min=lo), [(4, 5), (1, 5)]),
    (lambda m, x, hi: x.clip(max=hi), [(4, 5), (4, 1)]),
    (lambda m, x: m.movedim(x, 0, -1), [(2, 3, 4)]),
    (lambda m, x: x.movedim((0, 1), (2, 0)), [(2, 3, 4)]),
    (lambda m, x, y: x.view_as(y) + y.reshape_as(x).view_as(y), [(2, 6), (3, 4)]),
    (lambda m, x: x.expand(3, 2, 4) * 1, [(2, 1)]),
    (lambda m, x, y: x.expand_as(y) * y, [(1, 4), (3, 4)]),
    (lambda m, x: x.repeat(2, 3), [(2, 3)]),
    (lambda m, x: x.repeat(2, 1, 2), [(3, 2)]),
    (lambda m, x: x.unsqueeze(1).squeeze((1, 2)), [(3, 1, 2)]),
    (lambda m, x: m.permute(x, (2, 0, 1)).contiguous(), [(2, 3, 4)]),
    (lambda m, x: m.transpose(x, 0, 2), [(2, 3, 4)]),
    (lambda m, x: m.add(x, x, alpha=2.5) - m.sub(x, 1, alpha=3), [(3,)]),
    (lambda m, x, y: m.mul(x, y) + m.div(x, y) + m.pow(y, x), [(3,), pos((3,))]),
    (lambda m, x: m.reshape(x, (4, -1)) + m.flatten(x, 1), [(4, 2, 2)]),
    (lambda m, x, y: m.cat((x, y), dim=1) + m.concat([y, x], 1), [(2, 2), (2, 2)]),
    (lambda m, x, y: m.stack([x, y], 1), [(2, 3), (2, 3)]),
    (lambda m, x: m.sum(x, dim=1) + m.mean(x, axis=1) + x.sum(axis=(0, 1)), [(3, 4)]),
    (lambda m, x: m.max(x, 1).values + m.min(x, dim=1).values, [(3, 4)]),
    (lambda m, x: m.amax(x, 0) + m.amin(x, (0,)), [(3, 4)]),
    (lambda m, x, y: m.max(x, y) + m.min(x, y), [(3, 4), (3, 4)]),
    (lambda m, x: m.exp(x) + m.log(x) + m.sqrt(x), [pos((3,))]),
    (lambda m, x: m.sin(x) * m.cos(x), [(5,)]),
    (lambda m, x: m.rsqrt(x) + m.square(x) + m.reciprocal(x) + m.log1p(x) + m.log2(x), [pos((3,))]),
    (lambda m, x: m.logsumexp(x, 1) + x.logsumexp(0, keepdim=True).sum(), [(3, 4)]),
    (lambda m, x: m.norm(x) + x.norm(p=1, dim=1).sum() + x.norm(3, 0).sum(), [(3, 4)]),
    (lambda m, x: m.cumsum(x, 1) + x.cumsum(dim=0), [(3, 4)]),
    (lambda m, x: m.var(x, 1) + x.std(1, False) + x.var(1, correction=0), [(3, 4)]),
    (lambda m, x: x.gather(1, m.tensor([[0, 0], [2, 1], [3, 3]])), [(3, 4)]),
    (lambda m, x: m.index_select(x, 1, m.tensor([3, 0, 3])), [(3, 4)]),
    (lambda m, x: x.narrow(1, 1, 2) + x.select(1, 0).unsqueeze(1), [(3, 4)]),
    (lambda m, x: m.roll(x, 1, 0) + x.roll((1, -1), (0, 1)), [(3, 4)]),
    (lambda m, x: m.einsum("ij,jk->ik", x, x.t()) + m.einsum("ij->j", x).sum(), [(3, 4)]),
    (lambda m, x, y: m.einsum("bij,bjk->bik", x, y), [(2, 3, 4), (2, 4, 5)]),
    (lambda m, x: x.unflatten(1, (2, 2)).sum(2), [(3, 4)]),
    (lambda m, x: m.outer(x, x) + m.dot(x, x), [(3,)]),
    (lambda m, x: x.softmax(dim=0) + m.softmax(x, -1) + x.log_softmax(1), [(3, 4)]),
])
def test_differentiable_op_matches_torch(fn, specs):
    check(fn, *specs)


@pytest.mark.parametrize("fn", [
    lambda m, x: m.argsort(x, 1),
    lambda m, x: x.argsort(0, descending=True),
    lambda m, x: m.topk(x, 2).indices,
    lambda m, x: m.sign(x), lambda m, x: m.floor(x * 3), lambda m, x: x.ceil(),
    lambda m, x: m.round(x * 10), lambda m, x: m.trunc(x * 3),
    lambda m, x: m.eq(x, x) & m.ne(x, 0) | (x > 0), lambda m, x: ~(m.lt(x, 0) ^ m.ge(x, 0.5)),
    lambda m, x: m.le(x, 0).logical_or(m.gt(x, 1)),
    lambda m, x: m.isclose(x, x + 1e-9), lambda m, x: m.isfinite(x / 0),
    lambda m, x: m.isnan(x.log()),
    lambda m, x: m.argmax(x, dim=1), lambda m, x: m.argmin(x, axis=0),
    lambda m, x: (x > 0).sum(1), lambda m, x: (x > 0).any(1), lambda m, x: (x > 0).all(),
    lambda m, x: m.nonzero(x > 0), lambda m, x: m.masked_select(x, x > 0),
    lambda m, x: m.count_nonzero(x > 0, dim=0),
    lambda m, x: (x * 10).floor_divide(3), lambda m, x: (x * 10) % 3,
    lambda m, x: m.div(x * 10, 3, rounding_mode="floor"),
    lambda m, x: m.div(x * 10, 3, rounding_mode="trunc"),
])
def test_value_op_matches_torch(fn):
    x = np.random.default_rng(0).standard_normal((4, 5))
    ours, theirs = fn(distbp, distbp.tensor(x)), fn(torch, torch.tensor(x))
    np.testing.assert_allclose(np.asarray(ours.data), theirs.numpy(), rtol=1e-12)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")


def test_dtype_aliases_and_devices():
    assert distbp.long == np.int64 and distbp.int == np.int32 and distbp.float == np.float32
    assert distbp.double == np.float64 and distbp.half == distbp.float16 == np.float16
    assert distbp.bool == np.bool_ and distbp.uint8 == np.uint8 and distbp.int8 == np.int8
    assert distbp.int16 == np.int16 and distbp.short == np.int16
    x = distbp.arange(1, 7, 2, dtype=distbp.float64, device="cpu")
    assert x.dtype == np.float64 and x.tolist() == [1.0, 3.0, 5.0]
    assert distbp.arange(5).dtype == distbp.long and distbp.arange(0, 1, 0.25).dtype == np.float32
    assert x.device == distbp.device("cpu") == "cpu" and str(x.device) == "cpu"
    assert x.to("cpu") is x and x.to(distbp.device("cpu")) is x and x.cpu() is x
    assert x.to("cpu", distbp.float32).dtype == np.float32 and x.to(dtype=distbp.long).dtype == np.int64
    assert x.to(distbp.zeros(1)).dtype == np.float32
    assert not distbp.cuda.is_available()
    with pytest.raises(RuntimeError, match="CPU only"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        distbp.zeros(2, device="cuda:0")
    m = distbp.nn.Linear(2, 2).to("cpu").to(distbp.device("cpu"), dtype=distbp.float64)
    assert m.weight.dtype == np.float64


def test_creation_functions_like_torch():
    distbp.manual_seed(0)
    assert distbp.full((2, 2), 3).dtype == np.int64 and distbp.full((2,), 1.5).dtype == np.float32
    assert distbp.empty(2, 3).shape == (2, 3) and distbp.zeros((2, 3)).shape == (2, 3)
    assert distbp.randint(5, (3,)).shape == (3,) and distbp.randint(2, 5, (4, 2)).max().item() < 5
    assert sorted(distbp.randperm(5).tolist()) == [0, 1, 2, 3, 4]
    assert distbp.normal(0.0, 1.0, (3, 2)).shape == (3, 2)
    assert distbp.normal(distbp.zeros(4), distbp.ones(4)).shape == (4,)
    np.testing.assert_allclose(distbp.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())
    assert distbp.full_like(distbp.zeros(2), 7).tolist() == [7.0, 7.0]
    assert distbp.randn_like(distbp.zeros(2, dtype=distbp.float64)).dtype == np.float64
    g = distbp.Generator().manual_seed(1)
    a = distbp.randn(3, generator=g)
    b = distbp.randn(3, generator=distbp.Generator().manual_seed(1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert distbp.allclose(a, b) and distbp.equal(a, b) and distbp.is_tensor(a)


def test_multinomial_draws_from_the_distribution():
    distbp.manual_seed(0)
    p = distbp.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 0.0]])
    draws = distbp.multinomial(p, 2000, replacement=True)
    assert draws.shape == (2, 2000) and draws.dtype == np.int64
    assert (draws[1] == 0).all() and not (draws[0] == 0).any()
    assert abs((draws[0] == 2).float().mean().item() - 0.75) < 0.05
    assert sorted(p[0].multinomial(2).tolist()) == [1, 2]  # without replacement: distinct
    with pytest.raises(RuntimeError, match="without replacement"):
        p[1].multinomial(2)


def test_inplace_on_plain_tensors_writes_shared_storage():
    x = distbp.zeros(2, 3)
    view = x.data
    x[0] = 1.0
    x[1, 1:] = distbp.tensor([2.0, 3.0])
    x.add_(1).mul_(2)
    x += 1
    assert np.shares_memory(view, x.data)
    np.testing.assert_array_equal(x.numpy(), [[5, 5, 5], [3, 7, 9]])
    x.clamp_(max=6).masked_fill_(x > 5, 0)
    np.testing.assert_array_equal(x.numpy(), [[5, 5, 5], [3, 0, 0]])
    x.copy_(distbp.tensor([1.0, 2.0, 3.0]))  # broadcast like torch
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [1, 2, 3]])
    assert x.fill_(2).sum().item() == 12 and x.zero_().sum().item() == 0
    i = distbp.zeros(3, dtype=distbp.long)
    with pytest.raises(TypeError):
        i.add_(0.5)  # torch: result type Float can't be cast to the desired output type Long


def test_inplace_on_a_leaf_that_requires_grad_raises_like_torch():
    w = distbp.ones(3, requires_grad=True)
    tw = torch.ones(3, requires_grad=True)
    for f in (lambda t: t.add_(1), lambda t: t.__setitem__(0, 2.0), lambda t: t.zero_()):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            f(tw)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            f(w)
    with distbp.no_grad():
        w.add_(1)
        w[0] = 5.0
    np.testing.assert_array_equal(w.data, [5, 2, 2])


def test_inplace_in_a_graph_backpropagates_like_torch():
    def run(m, x, v):
        y = x * 2
        y[1:, 0] = v * 3
        y.add_(x, alpha=0.5)
        y += 1
        y.masked_fill_(y > 2.5, 0.0)
        y[0] *= x[0]
        z = m.zeros(3, 2, dtype=x.dtype)
        z[:, 1] = x[:, 0]
        return (y * y).sum() + (z * x).sum()

    check(run, (3, 2), (2,), gradcheck=False)
    check(run, (3, 2), (2,), seed=4)


@pytest.mark.parametrize("name", ["neg", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh"])
def test_unary_inplace_methods_and_functions_match_torch(name):
    """x.<name>_() in a graph and torch.<name>(x): values and gradients as torch's."""
    def run(m, x):
        y = x * 1
        getattr(y, name + "_")()
        return (y * getattr(m, name)(x)).sum()

    check(run, pos((3, 2)) if name in ("log", "sqrt") else (3, 2))


def test_inplace_on_views_in_a_graph_writes_through_like_torch():
    def run(m, x):
        y = x * 2
        row = y[0]                 # a view: writing it changes y, in torch and here
        row.add_(1)
        row *= x[1]
        total = row.sum()          # (a view read after a later write to its base would be stale)
        y[:, 1:] -= x[:, :1]
        col = y[:, 2]
        col.clamp_(max=0.5)
        return (y * y).sum() + total + col.sum()

    check(run, (3, 4), seed=2)
    y = distbp.randn(3, 4, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="reshaped/permuted/expanded view"):
        y.t().add_(1)              # torch would change y; distbp refuses rather than diverge
    with distbp.no_grad():
        z = y.detach()
        z[0].add_(1)               # outside the graph: writes through to z, as torch does
    np.testing.assert_array_equal(z.data[0], y.data[0])


def test_parameter_unused_in_forward_keeps_grad_none_and_is_not_moved():
    class Net(distbp.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = distbp.nn.Linear(3, 2), distbp.nn.Linear(3, 2)

        def forward(self, x):
            return self.used(x)

    net = Net()
    before = net.unused.weight.data.copy()
    opts = [distbp.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1),
            distbp.optim.AdamW(net.parameters(), lr=0.1)]
    for opt in opts:
        for _ in range(2):
            opt.zero_grad()
            net(distbp.randn(4, 3)).sum().backward()
            assert net.unused.weight.grad is None and net.used.weight.grad is not None
            opt.step()
    np.testing.assert_array_equal(net.unused.weight.data, before)


def test_grad_mode_functions():
    x = distbp.ones(2, requires_grad=True)
    with distbp.inference_mode():
        assert not (x * 2).requires_grad
    with distbp.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert distbp.is_grad_enabled()
    distbp.set_grad_enabled(False)
    assert not distbp.is_grad_enabled()
    distbp.set_grad_enabled(True)

    @distbp.inference_mode()
    def f(t):
        return t * 2
    assert not f(x).requires_grad and (x * 2).requires_grad


def test_module_level_shape_functions_and_item_tolist():
    x = distbp.arange(12).reshape(3, 4)
    assert distbp.numel(x) == 12 and x.dim() == 2 and x.size() == (3, 4) and x.size(-1) == 4
    assert distbp.squeeze(distbp.unsqueeze(x, 0)).shape == (3, 4)
    assert distbp.chunk(x, 2, 1)[1].tolist() == [[2, 3], [6, 7], [10, 11]]
    assert x[1, 2].item() == 6 and isinstance(x.tolist(), list)
    assert distbp.tensor_split(x, 3, dim=1)[2].shape == (3, 1)
    assert distbp.broadcast_to(distbp.ones(4), (2, 4)).shape == (2, 4)
    assert distbp.where(x > 9)[1].tolist() == [2, 3]
    assert x.detach().numpy() is x.data and distbp.clone(x).data is not x.data
    with pytest.raises(RuntimeError, match="requires grad"):
        distbp.ones(2, requires_grad=True).numpy()


def test_uniform_and_normal_fill_in_place():
    g = distbp.Generator().manual_seed(0)
    x = distbp.zeros(1000, dtype=distbp.float64)
    view = x.data
    x.uniform_(2.0, 3.0, generator=g)
    assert x.data is view and 2.0 <= x.min().item() and x.max().item() < 3.0
    x.normal_(1.0, 0.5)
    assert abs(x.mean().item() - 1.0) < 0.1 and abs(x.std().item() - 0.5) < 0.1
    assert x.bernoulli().sum().item() >= 0
