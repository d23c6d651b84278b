"""Lazy modules, as torch.nn's: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d/3d,
LazyBatchNorm1d/2d/3d, LazyInstanceNorm1d/2d/3d. The input size (in_features, in_channels,
num_features) is read from the first forward's input; the parameters are then materialized and
initialised exactly as the eager module would, and the module becomes that module
(`type(m) is Linear`), as in torch."""
from distbp.nn.conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d,
                            ConvTranspose3d)
from distbp.nn.linear import Linear
from distbp.nn.norm import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d,
                            InstanceNorm3d)
from distbp.nn.parameter import UninitializedBuffer, UninitializedParameter


def _infer_parameters(module, args, kwargs):
    module.initialize_parameters(*args, **kwargs)  # the forward's arguments
    if module.has_uninitialized_params():
        raise RuntimeError(f"{type(module).__name__}: parameters still uninitialized after the "
                           "first forward")
    module._lazy_hook.remove()
    del module._lazy_hook
    if module.cls_to_become is not None:
        module.__class__ = module.cls_to_become


class LazyModuleMixin:
    """Materializes UninitializedParameter/Buffer attributes in a forward pre-hook."""
    cls_to_become = None

    def _make_lazy(self):
        self._lazy_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def has_uninitialized_params(self):
        tensors = list(self._parameters.values()) + list(self._buffers.values())
        return any(isinstance(t, (UninitializedParameter, UninitializedBuffer)) for t in tensors)

    def initialize_parameters(self, input):
        raise NotImplementedError(f"{type(self).__name__} must implement initialize_parameters")


def _uninit(module, names, buffer=False):
    dtype = module._lazy_dtype
    for name in names:
        if buffer:
            module.register_buffer(name, UninitializedBuffer(dtype=dtype))
        else:
            setattr(module, name, UninitializedParameter(dtype=dtype))


class _LazyWeightBias(LazyModuleMixin):
    """weight and (if bias) bias uninitialised until the first input gives the size named by
    `_in_size` (in_features, in_channels); then they take the eager module's shapes and init."""
    _in_size = None

    def _lazy_init(self, bias):
        self._lazy_dtype = self.weight.dtype
        _uninit(self, ["weight"] + (["bias"] if bias else []))
        self._make_lazy()

    def reset_parameters(self):
        if not self.has_uninitialized_params() and getattr(self, self._in_size) != 0:
            super().reset_parameters()

    def _materialize(self, weight_shape, bias_size):
        self.weight.materialize(weight_shape)
        if self.bias is not None:
            self.bias.materialize((bias_size,))
        self.reset_parameters()


class LazyLinear(_LazyWeightBias, Linear):
    cls_to_become = Linear
    _in_size = "in_features"

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__(0, 0, False, device, dtype)
        self.out_features = out_features
        self._lazy_init(bias)

    def initialize_parameters(self, input):
        self.in_features = input.shape[-1]
        self._materialize((self.out_features, self.in_features), self.out_features)


class _LazyConvMixin(_LazyWeightBias):
    _in_size = "in_channels"

    def initialize_parameters(self, input):
        batched = input.ndim == self._dims + 2
        self.in_channels = input.shape[1 if batched else 0]
        if self.in_channels % self.groups:
            raise ValueError(f"{type(self).__name__}: in_channels={self.in_channels} (from the "
                             f"input) must be divisible by groups={self.groups}")
        g = self.groups
        io = (self.in_channels, self.out_channels // g) if self._transposed else \
            (self.out_channels, self.in_channels // g)
        self._materialize(io + self.kernel_size, self.out_channels)


def _lazy_conv(base, transposed):
    if transposed:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                     groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
            base.__init__(self, 0, 0, kernel_size, stride, padding, output_padding, groups, False,
                          dilation, padding_mode, device, dtype)
            self.out_channels = out_channels
            self._lazy_init(bias)
    else:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, padding_mode="zeros", device=None, dtype=None):
            base.__init__(self, 0, 0, kernel_size, stride, padding, dilation, groups, False,
                          padding_mode, device, dtype)
            self.out_channels = out_channels
            self._lazy_init(bias)
    return type(f"Lazy{base.__name__}", (_LazyConvMixin, base),
                {"cls_to_become": base, "__init__": __init__, "__module__": __name__,
                 "__doc__": f"{base.__name__} whose in_channels comes from the first input."})


LazyConv1d = _lazy_conv(Conv1d, False)
LazyConv2d = _lazy_conv(Conv2d, False)
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d, True)
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d, True)
LazyConv3d = _lazy_conv(Conv3d, False)
LazyConvTranspose3d = _lazy_conv(ConvTranspose3d, True)


class _LazyNormMixin(LazyModuleMixin):
    def _lazy_init(self, affine, track_running_stats, dtype):
        self._lazy_dtype = dtype
        _uninit(self, [n for n in ("weight", "bias") if self._parameters.get(n) is not None])
        _uninit(self, ["running_mean", "running_var"] if track_running_stats else [], buffer=True)
        self._make_lazy()

    def initialize_parameters(self, input):
        batched = input.ndim in self._input_dims
        self.num_features = input.shape[1 if batched else 0]
        n = (self.num_features,)
        for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            t = getattr(self, name)
            if isinstance(t, (UninitializedParameter, UninitializedBuffer)):
                t.materialize(n)
                t.data[...] = fill


def _lazy_norm(base):
    # torch's lazy norms default to affine=True, track_running_stats=True, InstanceNorm ones too
    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        base.__init__(self, 0, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        made = self.running_mean if track_running_stats else self.weight if affine else None
        self._lazy_init(affine, track_running_stats, getattr(made, "dtype", None))
    return type(f"Lazy{base.__name__}", (_LazyNormMixin, base),
                {"cls_to_become": base, "__init__": __init__, "__module__": __name__,
                 "__doc__": f"{base.__name__} whose num_features comes from the first input."})


LazyBatchNorm1d = _lazy_norm(BatchNorm1d)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d)
