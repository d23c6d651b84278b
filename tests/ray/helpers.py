"""Shared pieces of the Ray tests: the tiny config, a run directory, parameter comparison."""
from pathlib import Path

from distbp.data import ensure_prepared
from distbp.train.config import dump_config, load_config
from tests.parallel.helpers import max_diff, params  # noqa: F401 (re-exported)

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
