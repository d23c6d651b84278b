"""Every public callable of distbp, distbp.Tensor, distbp.nn (+ functional, init, utils) and
distbp.optim (+ lr_scheduler) takes torch's parameters: same names, same positions, torch's
defaults (tools/torch_signatures.py states the rule). What differs is listed in ALLOWED below with
the reason and the test that shows the behaviour; names torch does not have are in EXTENSIONS.
An entry that is no longer needed fails too, so the tables stay true.

The rule makes the historical silent bug impossible to bring back: `nn.Conv2d(1, 8, 3, 1, 0,
False)` meant bias=False in distbp and dilation=0 in torch; a positional parameter whose name
differs from torch's at that position fails here.
"""
import inspect
import pathlib

import pytest

from tools.torch_signatures import Param, check_all, mismatches, schema_overloads, torch_overloads

# (qualified name, parameter) -> (why it differs, the test that pins the behaviour down)
ALLOWED = {
    ("Tensor.uniform_", "from_"): (
        "torch's first parameter is named `from`, a Python keyword no Python function can use; "
        "positional calls are the same", "test_uniform_and_normal_fill_in_place"),
}

# distbp names torch does not have (under that name): qualified name -> why it exists
EXTENSIONS = {
    "distbp.gradcheck": "finite-difference check; torch's is torch.autograd.gradcheck",
    "nn.CausalSelfAttention": "the GPT block's attention used by distbp's char model",
    "nn.CausalSelfAttention.reset_parameters": "its init, torch's MultiheadAttention formula",
    "nn.CausalSelfAttention.forward": "its forward",
    "nn.CausalSelfAttention.extra_repr": "its repr",
    "nn.BasicBlock": "torchvision's ResNet BasicBlock (torchvision.models.resnet.BasicBlock)",
    "nn.BasicBlock.forward": "its forward",
    "F.get_activation": "name -> activation function, for the config-driven models",
    "nn.init.default_weight_and_bias_": "torch's Linear/ConvNd reset_parameters as one function",
    "nn.utils.clip_coefficient": "the factor clip_grad_norm_ applies, shared with the sharded trainer",
    "optim.lr_scheduler.LRScheduler.lr_at": "closed-form lr of a schedule (torch: _get_closed_form_lr)",
    "optim.lr_scheduler.StepLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.MultiStepLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.CosineAnnealingLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.LinearLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.ExponentialLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.ConstantLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.PolynomialLR.lr_at": "closed-form lr",
    "optim.lr_scheduler.WarmupCosine": "linear warm-up + cosine decay, distbp train's default schedule",
}


@pytest.fixture(scope="module")
def report():
    return check_all()


def test_every_public_name_takes_torchs_parameters(report):
    problems, _ = report
    unexplained = {k: v for k, v in problems.items() if k not in ALLOWED}
    assert not unexplained, f"{len(unexplained)} signature differences from torch:\n" + "\n".join(
        f"  {q}({p}): {msg}" for (q, p), msg in sorted(unexplained.items()))


def test_names_torch_lacks_are_listed(report):
    _, extensions = report
    unlisted = sorted(set(extensions) - set(EXTENSIONS))
    assert not unlisted, f"distbp names torch does not have, add them to EXTENSIONS: {unlisted}"


def test_tables_have_no_stale_entries(report):
    problems, extensions = report
    assert not [k for k in ALLOWED if k not in problems], "ALLOWED entries no longer needed"
    assert not [k for k in EXTENSIONS if k not in extensions], "EXTENSIONS entries no longer needed"


def test_every_allowed_difference_names_an_existing_test():
    tests = "".join(p.read_text() for p in pathlib.Path(__file__).parent.rglob("test_*.py"))
    for key, (reason, test) in ALLOWED.items():
        assert reason and f"def {test}(" in tests, f"{key}: test {test} not found"


def _params(fn):
    return [Param(p.name, "positional" if p.kind == p.POSITIONAL_OR_KEYWORD else "keyword-only",
                  p.default) for p in list(inspect.signature(fn).parameters.values())[1:]]


def test_the_conv2d_positional_bias_bug_cannot_come_back():
    import torch

    class OldConv2d:  # distbp's former signature: the sixth positional was bias
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
            pass

    found = mismatches(_params(OldConv2d.__init__), torch_overloads(torch.nn.Conv2d, "Conv2d"))
    assert found and found[0][0] == "bias" and "dilation" in found[0][1]


def test_a_default_or_keyword_that_differs_is_caught():
    import torch
    found = mismatches([Param("dim", "positional", -1)], torch_overloads(torch.nn.Softmax, "Softmax"))
    assert [p for p, _ in found] == ["dim"] and "default" in found[0][1]
    ours = [Param("input", "positional"), Param("other", "positional"), Param("scale", "keyword-only", 1)]
    assert [p for p, _ in mismatches(ours, schema_overloads("add", method=False))] == ["scale"]


def test_builtin_signatures_come_from_torchs_schemas():
    import torch
    div = schema_overloads("div", method=True)
    assert any([q.name for q in o] == ["other"] for o in div)  # the docstring says 'value'
    zeros = torch_overloads(torch.zeros, "zeros")
    assert any(q.name == "requires_grad" for o in zeros for q in o)  # only the docstring has it
