"""Padding modules (ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad; 1-D, 2-D, 3-D)
over F.pad. `padding` is an int (all sides) or torch's tuple (left, right[, top, bottom])."""
from distbp.nn import functional as F
from distbp.nn.functional._utils import ntuple
from distbp.nn.module import Module


class _PadNd(Module):
    _dims, _mode = 0, "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        self.padding = ntuple(padding, 2 * self._dims, "padding")
        self.value = value

    def forward(self, input):
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}" + (f", value={self.value}" if self._mode == "constant" else "")


class _ConstantPad(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding, value)


class _ZeroPad(_PadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ConstantPad1d(_ConstantPad):
    _dims = 1


class ConstantPad2d(_ConstantPad):
    _dims = 2


class ConstantPad3d(_ConstantPad):
    _dims = 3


class ZeroPad1d(_ZeroPad):
    _dims = 1


class ZeroPad2d(_ZeroPad):
    _dims = 2


class ZeroPad3d(_ZeroPad):
    _dims = 3


class _ModePad(_PadNd):
    def __init__(self, padding):
        super().__init__(padding)


class ReflectionPad1d(_ModePad):
    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_ModePad):
    _dims, _mode = 2, "reflect"


class ReplicationPad1d(_ModePad):
    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_ModePad):
    _dims, _mode = 2, "replicate"


class CircularPad1d(_ModePad):
    _dims, _mode = 1, "circular"


class CircularPad2d(_ModePad):
    _dims, _mode = 2, "circular"


class ReflectionPad3d(_ModePad):
    _dims, _mode = 3, "reflect"


class ReplicationPad3d(_ModePad):
    _dims, _mode = 3, "replicate"


class CircularPad3d(_ModePad):
    _dims, _mode = 3, "circular"
