"""The (device, dtype) pair every parameterised module takes last, as in torch, and the
weight + optional bias pair most of them register."""
import numpy as np

from distbp.nn.module import Parameter


def factory_dtype(device=None, dtype=None, what="module"):
    """numpy dtype for new parameters (default float32); device must be None or the CPU."""
    if device is not None and not str(device).startswith("cpu"):
        raise ValueError(f"{what}: device={device!r} is not available; distbp runs on the CPU "
                         f"(use device=None or 'cpu')")
    return np.dtype(np.float32 if dtype is None else dtype)


def weight_and_bias(module, weight_shape, bias_size, bias, dtype):
    """Register uninitialised module.weight (weight_shape) and module.bias (bias_size,), or bias
    as None when `bias` is false; the module's reset_parameters() fills them."""
    module.weight = Parameter(np.empty(weight_shape, dtype=dtype))
    if bias:
        module.bias = Parameter(np.empty(bias_size, dtype=dtype))
    else:
        module.register_parameter("bias", None)
