"""Fully connected classifiers: a plain MLP, and a deep MLP for the gradient-flow lessons."""
import math

from distbp import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    def __init__(self, in_features, hidden, num_classes, act="relu", dropout=0.0):
        super().__init__()
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), activation(act)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):          # (B, *shape) -> (B, classes)
        return self.net(x)

    @classmethod
    def from_config(cls, m, meta):
        return cls(math.prod(meta["shape"]), m["hidden"], meta["num_outputs"], m["activation"],
                   m["dropout"])


class DeepBlock(nn.Module):
    """Linear -> [BatchNorm] -> activation, optionally with a skip connection around it."""

    def __init__(self, width, act, batch_norm, residual, gain):
        super().__init__()
        self.linear = nn.Linear(width, width)
        if gain != 1.0:
            self.linear.weight.data *= gain
        self.norm = nn.BatchNorm1d(width) if batch_norm else None
        self.act = activation(act)
        self.residual = residual

    def forward(self, x):          # (B, width) -> (B, width)
        h = self.linear(x)
        if self.norm is not None:
            h = self.norm(h)
        h = self.act(h)
        return x + h if self.residual else h


class DeepMLP(nn.Module):
    """`depth` equal-width blocks: deep and plain, its early gradients vanish (sigmoid/tanh) or
    explode (large init); residual connections and batch-norm keep them healthy."""

    def __init__(self, in_features, width, depth, num_classes, act="tanh", batch_norm=False,
                 residual=False, gain=1.0):
        super().__init__()
        self.flatten = nn.Flatten()
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(
            [DeepBlock(width, act, batch_norm, residual, gain) for _ in range(depth)])
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        h = self.stem(self.flatten(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    @classmethod
    def from_config(cls, m, meta):
        return cls(math.prod(meta["shape"]), m["width"], m["depth"], meta["num_outputs"],
                   m["activation"], m["batch_norm"], m["residual"], m["init_gain"])
