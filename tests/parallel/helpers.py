"""Run `distbp train` for tests: the real CLI in-process (local backend spawns real processes)."""
import numpy as np

from distbp.cli import main as cli_main


def train(tmp_path, name, sets, workers=1, backend="local", extra=()):
    out = tmp_path / name
    argv = ["train", "--config", str(CONFIG), "--out", str(out), "--quiet",
            "--backend", backend, "--workers", str(workers)]
    for s in sets:
        argv += ["--set", s]
    rc = cli_main(argv + list(extra))
    assert rc == 0
    return out


def params(out):
    with np.load(out / "model.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) if a[k].size else 0.0 for k in a)


from pathlib import Path  # noqa: E402
CONFIG = Path(__file__).parent / "tiny.yaml"
