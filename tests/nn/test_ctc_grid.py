"""ctc_loss / CTCLoss and grid_sample / affine_grid against torch in float64 (outputs and every input
grad, then finite differences). These ops are composed (functional/ctc.py, functional/grid.py)."""
import numpy as np
import pytest
import torch

import distbp
import distbp.nn.functional as F
from distbp import nn
from tests.opcheck import check, const

T, N, C = 6, 3, 5
PADDED = const(np.array([[1, 2, 2, 0], [3, 1, 0, 0], [4, 4, 4, 0]]))
CONCAT = const(np.array([1, 2, 2, 3, 1, 0, 0, 1]))
IN_LEN, TGT_LEN = const(np.array([6, 5, 6])), const(np.array([3, 2, 3]))


def _ctc(**kw):
    # compared through log_softmax: torch's ctc gradient w.r.t. log_probs is exp(log_probs) minus
    # the occupancy, which equals the true one (ours) only after a log_softmax backward
    return lambda m, x, t, a, b: m.F.ctc_loss(m.F.log_softmax(x, -1), t, a, b, **kw)


CTC = [
    ("ctc_mean", _ctc(), (T, N, C), PADDED, IN_LEN, TGT_LEN),
    ("ctc_sum", _ctc(reduction="sum"), (T, N, C), PADDED, IN_LEN, TGT_LEN),
    ("ctc_none", _ctc(reduction="none"), (T, N, C), PADDED, IN_LEN, TGT_LEN),
    ("ctc_concatenated_blank4", _ctc(blank=4), (T, N, C), CONCAT, IN_LEN, TGT_LEN),
    ("ctc_infeasible_zero_infinity", _ctc(zero_infinity=True, reduction="none"), (T, N, C), PADDED,
     const(np.array([6, 2, 6])), TGT_LEN),
    ("ctc_empty_target", _ctc(reduction="none"), (T, N, C), PADDED, IN_LEN, const(np.array([0, 2, 1]))),
    ("ctc_unbatched", lambda m, x, t: m.F.ctc_loss(m.F.log_softmax(x, -1), t, (6,), (2,)), (T, C),
     const(np.array([1, 3]))),
]


def _gs(mode, padding_mode, align, scale=1.3):
    # the grid is a differentiable input squashed into [-scale, scale] (beyond [-1, 1]: padding)
    return lambda m, x, g: m.F.grid_sample(x, g.tanh() * scale, mode=mode, padding_mode=padding_mode,
                                           align_corners=align)


# every padding mode with and without align_corners for bilinear; nearest and bicubic alternate
GRID = [(f"grid_sample_{mode}_{pm}_{'ac' if ac else 'noac'}", _gs(mode, pm, ac), (1, 2, 4, 5), (1, 3, 4, 2))
        for mode, pm, ac in [("bilinear", pm, ac) for pm in ("zeros", "border", "reflection")
                             for ac in (False, True)]
        + [("nearest", "zeros", False), ("nearest", "border", True), ("nearest", "reflection", False),
           ("bicubic", "zeros", True), ("bicubic", "border", False), ("bicubic", "reflection", True)]]
GRID += [
    ("grid_sample_reflection_far", _gs("bilinear", "reflection", False, 4.0), (1, 2, 4, 3), (1, 5, 4, 2)),
    ("grid_sample_bicubic_reflection_far", _gs("bicubic", "reflection", False, 4.0), (1, 2, 4, 3), (1, 5, 4, 2)),
    ("grid_sample_3d_bilinear_zeros", _gs("bilinear", "zeros", False), (1, 2, 3, 4, 5), (1, 2, 3, 4, 3)),
    ("grid_sample_3d_bilinear_reflection_ac", _gs("bilinear", "reflection", True), (1, 2, 3, 4, 5), (1, 2, 3, 4, 3)),
    ("grid_sample_3d_nearest_border", _gs("nearest", "border", False), (2, 2, 3, 4, 2), (2, 2, 2, 3, 3)),
    ("affine_grid_2d", lambda m, t: m.F.affine_grid(t, (2, 3, 4, 5), align_corners=False), (2, 2, 3)),
    ("affine_grid_2d_ac", lambda m, t: m.F.affine_grid(t, (2, 3, 4, 5), align_corners=True), (2, 2, 3)),
    ("affine_grid_3d", lambda m, t: m.F.affine_grid(t, (1, 3, 2, 4, 3), align_corners=False), (1, 3, 4)),
    ("affine_grid_unit_height", lambda m, t: m.F.affine_grid(t, (1, 3, 1, 4), align_corners=False), (1, 2, 3)),
    ("spatial_transformer", lambda m, x, t: m.F.grid_sample(
        x, m.F.affine_grid(t, (2, 3, 4, 4), align_corners=False), align_corners=False), (2, 3, 5, 5), (2, 2, 3)),
]

CASES = CTC + GRID


@pytest.mark.parametrize("name,fn,specs", [(c[0], c[1], c[2:]) for c in CASES], ids=[c[0] for c in CASES])
def test_ctc_and_grid_ops_match_torch(name, fn, specs):
    check(fn, *specs)


def test_ctc_grad_wrt_log_probs_is_torchs_minus_exp_log_probs():
    """The one documented difference: torch's gradient w.r.t. log_probs is exp(log_probs) -
    occupancy; ours is -occupancy, the derivative of the loss as a function of log_probs."""
    lp = torch.randn(T, N, C, dtype=torch.float64).log_softmax(-1).requires_grad_()
    args = (torch.tensor(PADDED.array), torch.tensor(IN_LEN.array), torch.tensor(TGT_LEN.array))
    torch.nn.functional.ctc_loss(lp, *args, reduction="sum").backward()
    ours = distbp.tensor(lp.detach().numpy(), requires_grad=True)
    F.ctc_loss(ours, PADDED.array, IN_LEN.array, TGT_LEN.array, reduction="sum").backward()
    frames = np.arange(T)[:, None, None] < IN_LEN.array[None, :, None]
    np.testing.assert_allclose(ours.grad, lp.grad.numpy() - np.exp(lp.detach().numpy()) * frames, atol=1e-12)


def test_ctc_infeasible_alignment_is_inf_and_ctcloss_module_is_torchs():
    lp = np.log(np.full((3, 1, 3), 1 / 3))
    loss = F.ctc_loss(distbp.tensor(lp), [[1, 1]], [2], [2], reduction="none")  # needs 3 frames
    assert np.isinf(loss.data).all()
    x = np.random.default_rng(2).standard_normal((T, N, C))
    ours, theirs = nn.CTCLoss(blank=4, zero_infinity=True), torch.nn.CTCLoss(blank=4, zero_infinity=True)
    a = ours(distbp.tensor(x).log_softmax(-1), CONCAT.array, IN_LEN.array, TGT_LEN.array)
    b = theirs(torch.tensor(x).log_softmax(-1), torch.tensor(CONCAT.array), torch.tensor(IN_LEN.array),
               torch.tensor(TGT_LEN.array))
    np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: F.ctc_loss(distbp.zeros(4, 1, 3), [[1]], [5], [1]), "input_lengths"),
    (lambda: F.ctc_loss(distbp.zeros(4, 1, 3), [[3]], [4], [1]), r"outside \[0, 3\)"),
    (lambda: F.ctc_loss(distbp.zeros(4, 1, 3), [[1]], [4], [1], reduction="avg"), "reduction"),
    (lambda: F.grid_sample(distbp.zeros(1, 1, 2, 2), distbp.zeros(1, 2, 2, 3), align_corners=False), "grid"),
    (lambda: F.grid_sample(distbp.zeros(1, 1, 2, 2), distbp.zeros(1, 2, 2, 2), mode="area"), "mode"),
    (lambda: F.grid_sample(distbp.zeros(1, 1, 2, 2, 2), distbp.zeros(1, 2, 2, 2, 3), mode="bicubic",
                           align_corners=False), "bicubic"),
    (lambda: F.affine_grid(distbp.zeros(1, 2, 3), (1, 1, 2, 2, 2), align_corners=False), "theta"),
])
def test_bad_arguments_raise_naming_the_culprit(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_align_corners_none_warns_like_torch():
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.affine_grid(distbp.zeros(1, 2, 3), (1, 1, 2, 2))
