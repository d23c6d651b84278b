"""Unflatten: the inverse of Flatten (which lives with the activations); torch.nn.Unflatten."""
from distbp.nn.module import Module


class Unflatten(Module):
    """Expands dim `dim` into `unflattened_size`: (N, 12) with Unflatten(1, (3, 4)) -> (N, 3, 4)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if not isinstance(dim, int):
            raise TypeError(f"Unflatten: dim must be an int, got {type(dim).__name__}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
