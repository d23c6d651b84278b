"""Linear (y = x W^T + b) and Identity."""

import numpy as np

from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn.module import Module, Parameter


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """weight (out_features, in_features), bias (out_features,); torch's default init."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        dtype = np.dtype(dtype or np.float32)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"
