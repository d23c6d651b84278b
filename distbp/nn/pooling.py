"""Max/average pooling (1-D and 2-D) and global average pooling, torch's names and defaults
(stride defaults to kernel_size)."""
from distbp.nn import functional as F
from distbp.nn.module import Module


class _PoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(_PoolNd):
    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding)


class MaxPool2d(_PoolNd):
    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool1d(_PoolNd):
    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_PoolNd):
    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class _AdaptiveAvgPoolNd(Module):
    """Only output_size=1 (global average pooling, as at the end of a ResNet): the mean over the
    trailing spatial dims, keeping them as size 1 like torch."""
    _dims = 0

    def __init__(self, output_size=1):
        super().__init__()
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
        if any(s != 1 for s in sizes):
            raise ValueError(f"{type(self).__name__}: only output_size=1 is supported, "
                             f"got {output_size!r}")
        self.output_size = output_size

    def forward(self, x):
        dims = tuple(range(-self._dims, 0))
        return x.mean(dim=dims, keepdim=True)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    _dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    _dims = 2
