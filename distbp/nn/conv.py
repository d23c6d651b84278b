"""Conv1d and Conv2d (stride, padding; dilation 1, groups 1), torch's weight layout and init:
weight (out_channels, in_channels, *kernel_size), bias (out_channels,)."""

import numpy as np

from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn.module import Module, Parameter


def _tuple(x, n, name):
    t = tuple(x) if isinstance(x, (tuple, list)) else (x,) * n
    if len(t) != n:
        raise ValueError(f"{name}={x!r} must be an int or a {n}-tuple")
    return t


class _ConvNd(Module):
    _dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=None):
        super().__init__()
        n = self._dims
        dtype = np.dtype(dtype or np.float32)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.stride = _tuple(stride, n, "stride")
        self.padding = _tuple(padding, n, "padding")
        self.weight = Parameter(np.empty((out_channels, in_channels, *self.kernel_size), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_weight_and_bias_(self.weight, self.bias)

    def _check(self, x):
        want = self._dims + 2
        if x.data.ndim != want or x.data.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected input (N, {self.in_channels}, "
                             f"{', '.join('L' * self._dims)}), got shape {tuple(x.data.shape)}")

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvNd):
    _dims = 1

    def forward(self, x):
        self._check(x)
        return F.conv1d(x, self.weight, self.bias, stride=self.stride[0], padding=self.padding[0])


class Conv2d(_ConvNd):
    _dims = 2

    def forward(self, x):
        self._check(x)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
