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


class _ModePad(_PadNd):
    def __init__(self, padding):
        super().__init__(padding)


def _family(base, name, mode="constant"):
    """torch's {name}1d, {name}2d, {name}3d: `base` over 1, 2, 3 padded dims."""
    return tuple(type(f"{name}{n}d", (base,), {"_dims": n, "_mode": mode, "__module__": __name__,
                                               "__qualname__": f"{name}{n}d"}) for n in (1, 2, 3))


ConstantPad1d, ConstantPad2d, ConstantPad3d = _family(_ConstantPad, "ConstantPad")
ZeroPad1d, ZeroPad2d, ZeroPad3d = _family(_ZeroPad, "ZeroPad")
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = _family(_ModePad, "ReflectionPad", "reflect")
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = _family(_ModePad, "ReplicationPad",
                                                               "replicate")
CircularPad1d, CircularPad2d, CircularPad3d = _family(_ModePad, "CircularPad", "circular")
