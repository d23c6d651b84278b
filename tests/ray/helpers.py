"""Shared pieces of the Ray tests: the tiny config, a run directory, parameter comparison."""
from pathlib import Path

import numpy as np

from distbp.data import ensure_prepared
from distbp.train.config import dump_config, load_config

CONFIG = Path(__file__).parent / "tiny.yaml"


def config(*sets):
    cfg = load_config(CONFIG, list(sets))
    ensure_prepared(cfg["data"])
    return cfg


def run_dir(tmp_path, name, cfg):
    out = tmp_path / name
    out.mkdir()
    dump_config(cfg, out / "config.yaml")
    return out


def params(out):
    with np.load(out / "model.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
