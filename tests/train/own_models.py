"""Models of "a user's own", for the tests that give `distbp train` a model by import string:
    model: {name: "tests.train.own_models:make_mlp", kwargs: {in_features: 16, ...}}
"""
from distbp import nn


def make_mlp(in_features, hidden, num_outputs, batch_norm=False, dropout=0.0):
    layers = [nn.Flatten(), nn.Linear(in_features, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(nn.Tanh())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, num_outputs))
    return nn.Sequential(*layers)


class Linear1d(nn.Module):
    """A class works as the callable too: (B, 1, F) -> (B, outputs)."""

    def __init__(self, in_features, num_outputs):
        super().__init__()
        self.linear = nn.Linear(in_features, num_outputs)

    def forward(self, x):
        return self.linear(x.reshape(x.shape[0], -1))


def not_a_model():
    return 42
