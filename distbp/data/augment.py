"""Per-sample augmentation that does not depend on the rank or the number of ranks.

Every random number sample i receives is a pure function of (seed, STREAM, step, i, position):
i is the *global* sample index, step the global training step and STREAM a constant of the
transform class, fed to the counter-based Philox4x32-10 generator (distbp.data.philox). So the
same sample at the same step is augmented identically whether it lands on rank 0 of 1 or rank 3
of 4: concatenating the ranks' augmented slices reproduces the single-process batch bit for bit.
Draws for the whole batch come from one vectorised pass (no per-sample Generator objects, which
cost ~50 us each). Two identical transforms in one pipeline draw the same numbers; use one.

A transform is called as t(x, indices, step, seed) -> new x, x being (n, *sample_shape).

From config (`build_augment`): a list applied in order, each item {name: value} where value is the
main parameter, a dict of keyword arguments, or null for the defaults:

    augment: [{shift: 3}, {noise: 0.05}]          # RandomShift(3) then GaussianNoise(0.05)
    augment: [{crop: {padding: 1}}, flip]         # a bare name means default parameters
"""
import numpy as np

from distbp.data import philox
from distbp.errors import UsageError


class Transform:
    stream = 0  # the Philox key's second word: distinct per transform class

    def __call__(self, x, indices, step, seed):
        raise NotImplementedError


def _shift_axis(x, shifts, axis, wrap):
    """Shift row n of x by shifts[n] along `axis` (like np.roll), zero-filling unless wrap."""
    length = x.shape[axis]
    src = np.arange(length)[None, :] - shifts[:, None]             # (n, L): out[p] = x[p - s]
    valid = (src >= 0) & (src < length)
    src = src % length if wrap else np.clip(src, 0, length - 1)
    shape = [1] * x.ndim
    shape[0], shape[axis] = len(x), length
    out = np.take_along_axis(x, src.reshape(shape), axis)
    return out if wrap else np.where(valid.reshape(shape), out, 0).astype(x.dtype)


class RandomShift(Transform):
    """Shift each sample along its spatial axes by an integer in [-max_shift, max_shift].

    Spatial axes: all but the first (channel) axis of a sample, or its only axis for 1-D samples;
    so (1, 40) shifts along the 40 and (1, 8, 8) in both directions independently.
    fill="zero" pads the vacated border with zeros, fill="wrap" rolls the sample around.
    """
    stream = 0x5317

    def __init__(self, max_shift=2, fill="zero"):
        if not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
            raise UsageError(f"{type(self).__name__}: shift must be an integer >= 0, "
                             f"got {max_shift!r}")
        if fill not in ("zero", "wrap"):
            raise UsageError(f"{type(self).__name__}: fill must be 'zero' or 'wrap', got {fill!r}")
        self.max_shift, self.fill = int(max_shift), fill

    def __repr__(self):
        return f"{type(self).__name__}({self.max_shift}, fill={self.fill!r})"

    def __call__(self, x, indices, step, seed):
        axes = tuple(range(2, x.ndim)) if x.ndim > 2 else (1,)        # axes of x, after the batch
        shifts = philox.integers(seed, self.stream, step, indices, len(axes),
                                 -self.max_shift, self.max_shift)     # (n, len(axes))
        for j, axis in enumerate(axes):
            x = _shift_axis(x, shifts[:, j], axis, self.fill == "wrap")
        return x


class RandomCrop(RandomShift):
    """torchvision's RandomCrop(size=sample size, padding): zero-pad by `padding`, cut a random
    window of the original size. That equals a zero-filled shift by up to `padding` (own stream)."""
    stream = 0xC209

    def __init__(self, padding=2):
        super().__init__(padding, fill="zero")

    def __repr__(self):
        return f"RandomCrop(padding={self.max_shift})"


class RandomFlip(Transform):
    """Mirror the last axis with probability p (horizontal flip of (C, H, W) images)."""
    stream = 0xF11B

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise UsageError(f"RandomFlip: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def __repr__(self):
        return f"RandomFlip(p={self.p})"

    def __call__(self, x, indices, step, seed):
        flip = philox.uniform(seed, self.stream, step, indices, 1)[:, 0] < self.p  # (n,)
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out


class GaussianNoise(Transform):
    """Add N(0, std^2) noise to every value."""
    stream = 0x4015

    def __init__(self, std=0.05):
        if not std >= 0:
            raise UsageError(f"GaussianNoise: std must be >= 0, got {std!r}")
        self.std = float(std)

    def __repr__(self):
        return f"GaussianNoise({self.std})"

    def __call__(self, x, indices, step, seed):
        noise = philox.normal(seed, self.stream, step, indices, int(np.prod(x.shape[1:])))
        return (x + self.std * noise.reshape(x.shape)).astype(x.dtype)


class Compose(Transform):
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __repr__(self):
        return f"Compose({self.transforms})"

    def __call__(self, x, indices, step, seed):
        for t in self.transforms:
            x = t(x, indices, step, seed)
        return x


AUGMENTATIONS = {"shift": RandomShift, "crop": RandomCrop, "flip": RandomFlip,
                 "noise": GaussianNoise}


def _build_one(name, value):
    if name not in AUGMENTATIONS:
        raise UsageError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")
    cls = AUGMENTATIONS[name]
    try:
        if value is None or value is True:
            return cls()
        if isinstance(value, dict):
            return cls(**value)
        return cls(value)
    except TypeError as e:
        raise UsageError(f"augmentation {name!r}: bad parameters {value!r} ({e})") from None


def build_augment(spec):
    """Config data -> a transform (Compose for several) or None. See the module docstring."""
    if not spec:
        return None
    if isinstance(spec, (str, dict)):
        spec = [spec]
    if not isinstance(spec, (list, tuple)):
        raise UsageError(f"augment must be a list like [{{shift: 3}}, {{noise: 0.05}}], "
                         f"got {spec!r}")
    transforms = []
    for item in spec:
        if isinstance(item, str):
            transforms.append(_build_one(item, None))
        elif isinstance(item, dict):
            transforms.extend(_build_one(name, value) for name, value in item.items())
        else:
            raise UsageError(f"augment item must be a name or {{name: value}}, got {item!r}")
    return transforms[0] if len(transforms) == 1 else Compose(transforms)
