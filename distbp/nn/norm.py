"""BatchNorm1d/2d/3d (running statistics, momentum, affine, sync-able), SyncBatchNorm, LayerNorm,
GroupNorm, InstanceNorm1d/2d/3d, RMSNorm and LocalResponseNorm, torch's signatures and parameter names.

BatchNorm keeps `running_mean`, `running_var` and `num_batches_tracked` as buffers with torch's
names, so state_dicts copy across. `allreduce` is None or a callable that sums a numpy array in place
across data-parallel replicas; DistributedDataParallel sets it on every BatchNorm, so batch
statistics are always over the global batch there. SyncBatchNorm is torch's explicit form of that
(and synchronises outside DDP too, as torch's does).
"""
import numpy as np

from distbp.nn import functional as F
from distbp.nn._factory import factory_dtype
from distbp.nn.functional.norm import _batch_norm
from distbp.nn.module import Module, Parameter
from distbp.tensor import Tensor


class _BatchNorm(Module):
    _input_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        dtype = factory_dtype(device, dtype, type(self).__name__)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.allreduce = None
        _affine_params(self, (num_features,), affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def _check(self, x):
        if x.data.ndim not in self._input_dims or x.data.shape[1] != self.num_features:
            want = " or ".join(f"{d}-D" for d in self._input_dims)
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected {want} input "
                             f"with {self.num_features} channels in dim 1, got shape "
                             f"{tuple(x.data.shape)}")

    def forward(self, input):
        x = input
        self._check(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.data)
        # eval mode without running stats normalises with the batch's own statistics, as torch does
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return _batch_norm(x, self.running_mean if track else None,
                           self.running_var if track else None, self.weight, self.bias,
                           training=use_batch_stats, momentum=factor, eps=self.eps,
                           allreduce=self._stats_allreduce())

    def _stats_allreduce(self):
        """The callable that sums the batch statistics across replicas (None: this batch only)."""
        return self.allreduce

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, " \
               f"affine={self.affine}, track_running_stats={self.track_running_stats}"


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L)."""
    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W)."""
    _input_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Input (N, C, D, H, W)."""
    _input_dims = (5,)


def _sum_over(comm):
    def allreduce(array):
        return comm.allreduce(array, op="sum")
    return allreduce


class SyncBatchNorm(_BatchNorm):
    """torch.nn.SyncBatchNorm: batch norm whose training statistics are over the batch of every
    rank. Input (N, C, *) of any rank >= 2.

    distbp's DistributedDataParallel already synchronises the statistics of every BatchNorm it
    wraps (over its process group), so `convert_sync_batchnorm` changes nothing inside DDP; it is
    there so torch scripts port unchanged. Which ranks take part, as in torch: `process_group`
    (a distbp Communicator) if given; else the DDP wrapper's group; else the default group when
    distbp.distributed is initialized with more than one rank; else this batch alone. In eval mode
    the running statistics are used and nothing is exchanged. The exchange is a collective: every
    rank must run forward and backward of each SyncBatchNorm in the same order.
    """
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)
        if process_group is not None and not (hasattr(process_group, "allreduce")
                                              and hasattr(process_group, "size")):
            raise TypeError(f"SyncBatchNorm: process_group must be None or a distbp Communicator, "
                            f"got {type(process_group).__name__}")
        self.process_group = process_group

    def _check(self, x):
        if x.data.ndim < 2 or x.data.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}): expected input (N, "
                             f"{self.num_features}, *) of at least 2 dims, got shape "
                             f"{tuple(x.data.shape)}")

    def _stats_allreduce(self):
        if not self.training:
            return None
        if self.process_group is not None:
            return _sum_over(self.process_group) if self.process_group.size > 1 else None
        if self.allreduce is not None:
            return self.allreduce
        from distbp import distributed as dist
        if dist.is_initialized() and dist.get_world_size() > 1:
            return _sum_over(dist._get_default_group())
        return None

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Every BatchNorm1d/2d/3d in `module` (itself included) replaced by a SyncBatchNorm that
        shares its parameters and buffers; returns the converted module, as torch's does."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, (_InstanceNorm, SyncBatchNorm)):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group, bias=module.bias is not None)
            for name in ("weight", "bias"):
                if module._parameters.get(name) is not None:
                    out.register_parameter(name, module._parameters[name])
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if module._buffers.get(name) is not None:
                    out.register_buffer(name, module._buffers[name])
            out.allreduce = module.allreduce
            out.train(module.training)
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out


def _affine_params(module, shape, affine, bias, dtype):
    """weight = 1 and (if bias) bias = 0 of `shape`, or both registered as None."""
    if affine:
        module.weight = Parameter(np.ones(shape, dtype=dtype))
        if bias:
            module.bias = Parameter(np.zeros(shape, dtype=dtype))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


class _TrailingNorm(Module):
    """A norm over the trailing `normalized_shape` dims (an int is one dim), weight 1, bias 0."""

    def __init__(self, normalized_shape, eps, elementwise_affine, bias, device, dtype):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_params(self, self.normalized_shape, elementwise_affine, bias,
                       factory_dtype(device, dtype, type(self).__name__))

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class LayerNorm(_TrailingNorm):
    """Normalises over the trailing `normalized_shape` dims; weight 1, bias 0."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__(normalized_shape, eps, elementwise_affine, bias, device, dtype)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(_TrailingNorm):
    """x / rms(x) over the trailing dims, times weight (no bias); eps None: the dtype's eps."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__(normalized_shape, eps, elementwise_affine, False, device, dtype)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


class GroupNorm(Module):
    """Input (N, C, *): statistics per sample over each of num_groups channel groups."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *,
                 bias=True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine_params(self, (num_channels,), affine, bias, factory_dtype(device, dtype, "GroupNorm"))

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}): expected input "
                             f"(N, {self.num_channels}, *), got shape {tuple(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_BatchNorm):
    """Statistics per (sample, channel) over the spatial dims; unbatched input (C, *) allowed."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input):
        unbatched = input.ndim == self._input_dims[0] - 1
        x = input.unsqueeze(0) if unbatched else input
        self._check(x)
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              use_input_stats=self.training or not self.track_running_stats,
                              momentum=0.1 if self.momentum is None else self.momentum, eps=self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Input (N, C, L) or (C, L)."""
    _input_dims = (3,)


class InstanceNorm2d(_InstanceNorm):
    """Input (N, C, H, W) or (C, H, W)."""
    _input_dims = (4,)


class InstanceNorm3d(_InstanceNorm):
    """Input (N, C, D, H, W) or (C, D, H, W)."""
    _input_dims = (5,)


class LocalResponseNorm(Module):
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
