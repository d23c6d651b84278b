"""distbp.utils, as torch.utils: `distbp.utils.data` holds the map-style data pipeline."""
