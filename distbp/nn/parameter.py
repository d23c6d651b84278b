"""Parameter, Buffer and the uninitialized placeholders of lazy modules, as torch.nn.parameter.

`Buffer(t, persistent=True)` assigned to a module attribute registers a buffer (like
register_buffer). `UninitializedParameter` / `UninitializedBuffer` hold no data until
`materialize(shape)`; the Lazy* modules (lazy.py) materialize them from their first input.
"""
import numpy as np

from distbp import dtypes
from distbp.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad=True by default).
    Like torch, it shares the storage of `data` (a Tensor or numpy array) instead of copying."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=dtypes.get_default_dtype())
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(np.asarray(data), requires_grad=requires_grad)

    __hash__ = object.__hash__  # parameters key optimizer state and hook tables by identity

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute: module.x = Buffer(t)."""

    def __init__(self, data=None, *, persistent=True):
        if data is None:
            data = np.empty(0, dtype=dtypes.get_default_dtype())
        super().__init__(data.data if isinstance(data, Tensor) else np.asarray(data))
        self.persistent = persistent


class _Uninitialized:
    """Mixin: no data until materialize(shape); using the data before raises a clear error."""
    cls_to_become = None

    def materialize(self, shape, device=None, dtype=None):
        dtypes.check_device(device)
        dtype = self._dtype if dtype is None else dtypes.as_dtype(dtype)
        self.data = np.empty(tuple(shape), dtype=dtype)
        self.__class__ = self.cls_to_become

    def __repr__(self):
        return f"<{type(self).__name__}: materialized by the module's first forward>"

    def _uninit(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} has no data yet: run one forward pass (or call "
                           "materialize(shape)) before using it")

    shape = property(lambda self: self._uninit())
    numel = __add__ = __mul__ = __matmul__ = __getitem__ = _uninit


class UninitializedParameter(_Uninitialized, Parameter):
    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        dtypes.check_device(device)
        self._dtype = dtypes.as_dtype(dtype)
        super().__init__(np.empty(0, dtype=self._dtype), requires_grad)


class _MaterializedBuffer(Tensor):
    """What an UninitializedBuffer becomes: a plain Tensor (with a __dict__, so that the class
    switch of materialize() is allowed)."""


class UninitializedBuffer(_Uninitialized, Tensor):
    cls_to_become = _MaterializedBuffer

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        dtypes.check_device(device)
        self._dtype = dtypes.as_dtype(dtype)
        self.persistent = persistent
        super().__init__(np.empty(0, dtype=self._dtype), requires_grad)
