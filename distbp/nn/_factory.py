"""The (device, dtype) pair every parameterised module takes last, as in torch."""
import numpy as np


def factory_dtype(device=None, dtype=None, what="module"):
    """numpy dtype for new parameters (default float32); device must be None or the CPU."""
    if device is not None and not str(device).startswith("cpu"):
        raise ValueError(f"{what}: device={device!r} is not available; distbp runs on the CPU "
                         f"(use device=None or 'cpu')")
    return np.dtype(np.float32 if dtype is None else dtype)
