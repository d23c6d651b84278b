"""Your own model inside `distbp train`, named by an import string in the config.

    distbp train --config examples/custom_model.yaml --out runs/custom       # from the repo root
    distbp train --config examples/custom_model.yaml --workers 1 --set model.kwargs.channels=64
    mpiexec -n 2 distbp train --config examples/custom_model.yaml --backend mpi --out runs/custom

`distbp train` builds the model with make_model(**model.kwargs) and keeps everything else it does
for the built-ins: data sharding, world-size invariance, checkpoints, exact resume, evaluation,
metrics, --trace and `distbp plot`.
"""
import distbp.nn as nn


class TinyConvNet(nn.Module):
    """Two 1-D convolutions, global average pooling, a linear head: (B, 1, L) -> (B, classes)."""

    def __init__(self, channels, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size=5, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=5, padding=2), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())                      # (B, channels)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def make_model(channels=32, num_classes=10):
    return TinyConvNet(channels, num_classes)
