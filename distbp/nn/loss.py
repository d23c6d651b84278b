"""Loss modules over distbp.nn.functional: CrossEntropyLoss and MSELoss."""
from distbp.nn import functional as F
from distbp.nn.module import Module


class CrossEntropyLoss(Module):
    """Logits (N, C) or (N, C, d...) and integer targets (N,) or (N, d...)."""

    def __init__(self, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        super().__init__()
        self.reduction, self.label_smoothing, self.ignore_index = reduction, label_smoothing, ignore_index

    def forward(self, input, target):
        kwargs = dict(reduction=self.reduction, label_smoothing=self.label_smoothing)
        if self.ignore_index != -100:
            kwargs["ignore_index"] = self.ignore_index
        return F.cross_entropy(input, target, **kwargs)

    def extra_repr(self):
        return f"reduction='{self.reduction}', label_smoothing={self.label_smoothing}"


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction='{self.reduction}'"
