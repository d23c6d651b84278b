"""torch.cuda's availability queries, answered for a CPU-only engine, so the usual
`device = "cuda" if torch.cuda.is_available() else "cpu"` ports unchanged."""


def is_available():
    return False


def device_count():
    return 0


def manual_seed(seed):
    """No CUDA generator to seed: a no-op, as torch's is without a GPU."""


def manual_seed_all(seed):
    """No CUDA generators to seed: a no-op, as torch's is without a GPU."""
