"""nn.AdaptiveLogSoftmaxWithLoss against torch's with the same weights in float64: forward output and
loss, input and parameter grads, log_prob, predict, the unbatched form and the argument checks."""
import numpy as np
import pytest
import torch

from distbp import nn
from distbp.tensor import Tensor
from tests.nn.torch_compare import compare

TARGET = np.array([0, 5, 12, 19, 3, 11, 9, 4])


class _Both(nn.Module):  # forward(x) -> (output, loss) for torch_compare
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return tuple(self.m(x, TARGET))


class _TorchBoth(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return tuple(self.m(x, torch.tensor(TARGET)))


@pytest.mark.parametrize("cutoffs, div_value, head_bias", [([4, 10], 2.0, True), ([6], 4.0, False)])
def test_adaptive_log_softmax_matches_torch(cutoffs, div_value, head_bias):
    ours = nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs, div_value=div_value, head_bias=head_bias)
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs, div_value=div_value, head_bias=head_bias)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    x = np.random.default_rng(0).standard_normal((len(TARGET), 8))
    compare(_Both(ours), _TorchBoth(theirs), x)
    np.testing.assert_allclose(ours.log_prob(Tensor(x)).data, theirs.log_prob(torch.tensor(x)).detach().numpy(),
                               atol=1e-12)
    # predict: make the clusters win for some rows, so both of its branches run
    with torch.no_grad():
        theirs.head.weight[-1] += torch.tensor(np.linspace(-3, 3, 8))
    ours.head.weight.data[-1] += np.linspace(-3, 3, 8)
    pred, tpred = ours.predict(Tensor(x)).data, theirs.predict(torch.tensor(x)).numpy()
    assert (pred >= cutoffs[0]).any() and (pred < cutoffs[0]).any()
    np.testing.assert_array_equal(pred, tpred)


def test_unbatched_and_bad_arguments():
    ours = nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3]).double()
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3]).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(1).standard_normal(4)
    out, tout = ours(Tensor(x), np.array(7)), theirs(torch.tensor(x), torch.tensor(7))
    assert out.output.shape == () and abs(out.loss.item() - tout.loss.item()) < 1e-12
    with pytest.raises(ValueError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 3])
    with pytest.raises(ValueError, match=r"target values should be in \[0, 9\]"):
        ours(Tensor(np.zeros((2, 4))), np.array([1, 10]))
    with pytest.raises(ValueError, match="expects input"):
        ours(Tensor(np.zeros((3, 4))), np.array([1, 2]))
