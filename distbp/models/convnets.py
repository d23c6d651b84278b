"""Convolutional classifiers: a plain CNN (1-D for MNIST-1D, 2-D for digits) and a residual 1-D net."""
import math

from distbp import nn


class ConvNet(nn.Module):
    """Per stage: Conv (k=5 in 1-D, 3x3 in 2-D, 'same' padding) -> ReLU -> MaxPool(2); then a
    linear head. (B, C, L) or (B, C, H, W) -> (B, classes)."""

    def __init__(self, in_shape, channels, num_classes, dropout=0.0):
        super().__init__()
        conv, pool, k = ((nn.Conv1d, nn.MaxPool1d, 5) if len(in_shape) == 2
                         else (nn.Conv2d, nn.MaxPool2d, 3))
        c, spatial = in_shape[0], list(in_shape[1:])
        layers = []
        for out in channels:
            layers += [conv(c, out, k, padding=k // 2), nn.ReLU(), pool(2)]
            c, spatial = out, [s // 2 for s in spatial]
        layers.append(nn.Flatten())
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c * math.prod(spatial), num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    @classmethod
    def from_config(cls, m, meta):
        return cls(tuple(meta["shape"]), m["channels"], meta["num_outputs"], m["dropout"])


CNN1d = CNN2d = ConvNet     # the config names: model.name cnn1d (MNIST-1D) and cnn2d (digits)


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
        return cls(tuple(meta["shape"]), m["channels"], m["blocks"], meta["num_outputs"])
