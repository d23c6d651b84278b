"""Every nn.functional function and every layer of the functional families has torch's exact
signature: parameter names, order, kinds and defaults (so positional calls mean the same thing;
Conv2d's sixth argument is `dilation`, cross_entropy's third is `weight`). distbp may add
keyword-only extensions but nothing positional."""
import inspect
import re

import pytest
import torch

import distbp.nn as nn
import distbp.nn.functional as F

# torch builds these with boolean_dispatch (signature (*args, **kwargs)); the real one is here
DISPATCHED = {"max_pool1d": "max_pool1d_with_indices", "max_pool2d": "max_pool2d_with_indices",
              "adaptive_max_pool1d": "adaptive_max_pool1d_with_indices",
              "adaptive_max_pool2d": "adaptive_max_pool2d_with_indices",
              "max_pool3d": "max_pool3d_with_indices",
              "adaptive_max_pool3d": "adaptive_max_pool3d_with_indices",
              "fractional_max_pool2d": "fractional_max_pool2d_with_indices",
              "fractional_max_pool3d": "fractional_max_pool3d_with_indices"}

LAYER_FILES = ("activation", "attention", "conv", "distance", "dropout", "fold", "linear", "loss",
               "norm", "padding", "pooling", "sparse", "transformer", "upsampling")
NOT_OURS = {"Identity", "Flatten"}  # nn.Identity/Flatten belong with the containers (helper torch)


# the native schema has a '*' that the docstring's first line leaves out
NATIVE = {"scaled_dot_product_attention": "query, key, value, attn_mask=None, dropout_p=0.0, "
                                          "is_causal=False, *, scale=None, enable_gqa=False",
          "conv_tbc": "input, weight, bias, pad=0"}  # aten::conv_tbc; its docstring has no signature


def _doc_signature(fn):
    """Signature of a C builtin from the first 'name(args) -> ...' of its docstring."""
    if fn.__name__ in NATIVE:
        return inspect.signature(eval(f"lambda {NATIVE[fn.__name__]}: None"))  # noqa: S307
    doc = fn.__doc__ or ""
    m = re.search(r"\w+\((.*?)\)\s*->", doc, re.S)
    assert m, f"no signature in the docstring of {fn}"
    args = " ".join(m.group(1).split())
    return inspect.signature(eval(f"lambda {args}: None"))  # noqa: S307 (torch's own docstring)


def torch_signature(fn):
    try:
        return inspect.signature(fn)
    except (ValueError, TypeError):
        return _doc_signature(fn)


def params(sig, drop_self=False):
    ps = list(sig.parameters.values())
    if drop_self and ps and ps[0].name == "self":
        ps = ps[1:]
    return ps


def assert_same(ours, theirs, what):
    ours, theirs = params(ours, True), params(theirs, True)
    theirs_names = [p.name for p in theirs]
    extra = [p for p in ours if p.name not in theirs_names]
    for p in extra:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, \
            f"{what}: extra parameter {p.name!r} must be keyword-only (not in torch)"
    ours = [p for p in ours if p.name in theirs_names]
    assert [p.name for p in ours] == theirs_names, \
        f"{what}: parameters {[p.name for p in ours]} vs torch's {theirs_names}"
    for a, b in zip(ours, theirs):
        kind_a = "kw" if a.kind is inspect.Parameter.KEYWORD_ONLY else a.kind
        kind_b = "kw" if b.kind is inspect.Parameter.KEYWORD_ONLY else b.kind
        assert kind_a == kind_b, f"{what}: {a.name} is {a.kind} here, {b.kind} in torch"
        if b.default is inspect.Parameter.empty:
            assert a.default is inspect.Parameter.empty, f"{what}: {a.name} has a default, torch not"
        elif callable(b.default):
            assert getattr(a.default, "__name__", None) == b.default.__name__, \
                f"{what}: default of {a.name} is {a.default}, torch's {b.default}"
        else:
            assert a.default == b.default and type(a.default) in (type(b.default), float, int), \
                f"{what}: default of {a.name} is {a.default!r}, torch's {b.default!r}"


FUNCTIONS = sorted(n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))
                   and hasattr(torch.nn.functional, n) and n != "get_activation")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functional_signature_matches_torch(name):
    theirs = getattr(torch.nn.functional, DISPATCHED.get(name, name))
    assert_same(inspect.signature(getattr(F, name)), torch_signature(theirs), f"F.{name}")


def _layers():
    out = []
    for name in dir(nn):
        cls = getattr(nn, name)
        if (inspect.isclass(cls) and issubclass(cls, nn.Module) and hasattr(torch.nn, name)
                and cls.__module__.split(".")[-1] in LAYER_FILES and name not in NOT_OURS):
            out.append(name)
    return sorted(out)


LAYERS = _layers()


@pytest.mark.parametrize("name", LAYERS)
def test_layer_constructor_and_forward_match_torch(name):
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    t_init = inspect.signature(theirs.__init__)
    if [p.kind for p in params(t_init, True)] != [inspect.Parameter.VAR_POSITIONAL,
                                                   inspect.Parameter.VAR_KEYWORD]:
        assert_same(inspect.signature(ours.__init__), t_init, f"nn.{name}.__init__")
    assert_same(inspect.signature(ours.forward), inspect.signature(theirs.forward),
                f"nn.{name}.forward")


def test_the_lists_cover_the_families():
    assert len(FUNCTIONS) >= 90 and len(LAYERS) >= 100
    for name in ("conv2d", "cross_entropy", "nll_loss", "mse_loss", "scaled_dot_product_attention",
                 "max_pool2d", "softmax"):
        assert name in FUNCTIONS
    for name in ("Conv1d", "Conv2d", "CrossEntropyLoss", "NLLLoss", "Linear", "LayerNorm",
                 "BatchNorm1d", "Embedding", "Softmax", "MultiheadAttention",
                 "TransformerEncoderLayer"):
        assert name in LAYERS
