"""distbp.utils, as torch.utils: `distbp.utils.data` holds the map-style data pipeline."""
from distbp.utils import data

__all__ = ["data"]
