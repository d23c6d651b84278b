"""Module mechanics: registration, dotted names, state_dict round trip and load errors, modes,
dtype conversion, containers, init, clip_grad_norm_."""
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch

import distbp
from distbp import nn
from distbp.tensor import Tensor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
        self.head = nn.Linear(8, 3)
        self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3, bias=False)])
        self.register_buffer("scale", np.ones(3))
        self.register_buffer("cache", np.zeros(2), persistent=False)
        self.note = "plain attribute"


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                            torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 3)
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(3, 3), torch.nn.Linear(3, 3, bias=False)])
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("cache", torch.zeros(2), persistent=False)


def test_names_match_torch():
    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [type(c).__name__ for c in ours.children()] == ["Sequential", "Linear", "ModuleList"]
    assert ours.note == "plain attribute" and "note" not in ours.state_dict()


def test_parameters_are_registered_and_shared_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.requires_grad
    lin.extra = nn.Parameter(np.zeros(3))
    assert "extra" in dict(lin.named_parameters())
    del lin.extra
    assert "extra" not in dict(lin.named_parameters())
    with pytest.raises(TypeError, match="cannot assign ndarray to 'weight' of Linear"):
        lin.weight = np.zeros((2, 2))


def test_default_dtype_and_conversion():
    net = Net()
    assert all(p.data.dtype == np.float32 for p in net.parameters())
    params = list(net.parameters())
    net.double()
    assert all(p.data.dtype == np.float64 for p in net.parameters())
    assert all(a is b for a, b in zip(params, net.parameters()))  # identity kept (optimizers)
    assert net.features[1].num_batches_tracked.data.dtype == np.int64
    assert nn.Linear(2, 3, dtype=np.float64).weight.data.dtype == np.float64


def test_state_dict_shares_storage_like_torch():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict) and "cache" not in sd
    assert all(isinstance(v, Tensor) and not v.requires_grad for v in sd.values())
    sd["head.weight"].copy_(distbp.full((3, 8), 5.0))  # torch: writes into the model
    assert (a.head.weight.data == 5).all()
    assert a.state_dict(keep_vars=True)["head.weight"] is a.head.weight
    assert list(a.state_dict(prefix="m.")) == ["m." + k for k in sd]
    weight = b.head.weight
    b.load_state_dict(a.state_dict())
    assert b.head.weight is weight  # loaded in place
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    fresh = np.zeros((3, 8), dtype=np.float32)
    b.load_state_dict({**a.state_dict(), "head.weight": fresh}, assign=True)
    assert b.head.weight.data is fresh and b.head.weight is weight


def test_shared_module_appears_under_both_names_like_torch():
    lin = nn.Linear(2, 2)
    ours = nn.Sequential(lin, nn.ReLU(), lin)
    tlin = torch.nn.Linear(2, 2)
    theirs = torch.nn.Sequential(tlin, torch.nn.ReLU(), tlin)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert [n for n, _ in ours.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_parameters(remove_duplicate=False)]
    assert [n for n, _ in ours.named_modules(None, "net")] == \
        [n for n, _ in theirs.named_modules(None, "net")]


def test_state_dict_loads_into_torch_and_back():
    ours, theirs = Net(), TorchNet()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    back = Net()
    back.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v, back.state_dict()[k])


def test_load_state_dict_errors_name_the_key():
    net = Net()
    sd = net.state_dict()
    missing = OrderedDict((k, v) for k, v in sd.items() if k != "head.bias")
    with pytest.raises(RuntimeError, match="for Net: missing key.s. 'head.bias'"):
        net.load_state_dict(missing)
    with pytest.raises(RuntimeError, match="unexpected key.s. 'head.extra'"):
        net.load_state_dict({**sd, "head.extra": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r"'head.weight': checkpoint has shape \(3, 9\), model "
                                           r"has shape \(3, 8\)"):
        net.load_state_dict({**sd, "head.weight": np.zeros((3, 9))}, strict=False)
    result = net.load_state_dict(missing, strict=False)
    assert result == (["head.bias"], []) and result.missing_keys == ["head.bias"]
    assert result.unexpected_keys == []


def test_train_eval_apply_zero_grad():
    net = Net()
    assert net.training and net.features[1].training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and "Conv2d" in seen
    for p in net.parameters():
        p.grad = np.ones_like(p.data)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_through_sequential_and_backward():
    distbp.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    net(x).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.data.shape for p in net.parameters())
    assert len(net) == 3 and isinstance(net[1], nn.ReLU) and len(net[1:]) == 2


def test_module_dict_and_list():
    d = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    assert list(d) == ["a", "b"] and "a" in d
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2))
    assert len(ml) == 2 and ml[1].out_features == 2


def test_repr():
    r = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in r and "(1): ReLU()" in r


def test_missing_super_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match=r"call super\(\)\.__init__\(\)"):
        Bad()


def test_seeded_init_is_reproducible_and_has_torch_bounds():
    distbp.manual_seed(3)
    a = nn.Linear(100, 50)
    distbp.manual_seed(3)
    b = nn.Linear(100, 50)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    bound = 1 / math.sqrt(100)  # kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.weight.data).max() > 0.9 * bound
    assert np.abs(a.bias.data).max() <= bound
    conv = nn.Conv2d(4, 8, 3)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(36)
    gru = nn.GRU(3, 16)
    assert all(np.abs(p.data).max() <= 0.25 for p in gru.parameters())
    emb = nn.Embedding(1000, 20)
    assert abs(emb.weight.data.std() - 1) < 0.05
    bn = nn.BatchNorm1d(4)
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()


def test_init_functions_match_torch_statistics():
    w = nn.Parameter(np.empty((400, 300)))
    for fn, expected_std in [
        (lambda t: nn.init.xavier_uniform_(t), math.sqrt(2 / 700)),
        (lambda t: nn.init.xavier_normal_(t), math.sqrt(2 / 700)),
        (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 300)),
        (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / 300)),
    ]:
        fn(w)
        assert abs(w.data.std() / expected_std - 1) < 0.02
    nn.init.zeros_(w)
    assert not w.data.any()
    nn.init.ones_(w)
    assert (w.data == 1).all()
    assert nn.init.calculate_gain("tanh") == torch.nn.init.calculate_gain("tanh")
    assert nn.init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s) for s in [(3, 4), (4,), (2, 2)]]
    ours = [nn.Parameter(np.zeros(g.shape)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad, tp.grad = g.copy(), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(ttotal.item(), rel=1e-12)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


def test_parameters_to_vector_round_trip():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(net.parameters())
    assert vec.shape == (11,)
    nn.utils.vector_to_parameters(vec * 2, net.parameters())
    np.testing.assert_allclose(nn.utils.parameters_to_vector(net.parameters()), vec * 2)
    with pytest.raises(ValueError, match="10 elements, parameters have 11"):
        nn.utils.vector_to_parameters(vec[:10], net.parameters())
