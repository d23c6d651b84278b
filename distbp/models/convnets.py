"""Convolutional classifiers: a 1-D CNN and a residual 1-D net (MNIST-1D), a 2-D CNN (digits)."""
from distbp import nn


class CNN1d(nn.Module):
    """Per stage: Conv1d(k=5) -> ReLU -> MaxPool1d(2); then a linear head. (B, C, L) -> (B, classes)."""

    def __init__(self, in_shape, channels, num_classes, dropout=0.0):
        super().__init__()
        c, length = in_shape
        layers = []
        for out in channels:
            layers += [nn.Conv1d(c, out, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2)]
            c, length = out, length // 2
        layers.append(nn.Flatten())
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c * length, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    @classmethod
    def from_config(cls, m, meta):
        return cls(tuple(meta["shape"]), m["channels"], meta["num_classes"], m["dropout"])


class ResNet1d(nn.Module):
    """Stem conv + BN, then stages of residual BasicBlocks (stride 2 between stages), global average
    pooling over length, linear head. (B, C, L) -> (B, classes)."""

    def __init__(self, in_shape, channels, blocks, num_classes):
        super().__init__()
        c = in_shape[0]
        self.stem = nn.Sequential(nn.Conv1d(c, channels[0], 3, padding=1, bias=False),
                                  nn.BatchNorm1d(channels[0]), nn.ReLU())
        layers, c = [], channels[0]
        for i, width in enumerate(channels):
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(nn.BasicBlock(c, width, stride=stride, dims=1))
                c = width
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        h = self.layers(self.stem(x))      # (B, C, L')
        return self.head(h.mean(dim=2))    # (B, C) -> (B, classes)

    @classmethod
    def from_config(cls, m, meta):
        return cls(tuple(meta["shape"]), m["channels"], m["blocks"], meta["num_classes"])


class CNN2d(nn.Module):
    """Conv(3x3) -> ReLU per stage with a 2x2 max-pool after each stage; linear head."""

    def __init__(self, in_shape, channels, num_classes, dropout=0.0):
        super().__init__()
        c, h, w = in_shape
        layers = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        layers.append(nn.Flatten())
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c * h * w, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    @classmethod
    def from_config(cls, m, meta):
        return cls(tuple(meta["shape"]), m["channels"], meta["num_classes"], m["dropout"])
