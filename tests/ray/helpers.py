"""Shared pieces of the Ray tests: the tiny config, a run directory, the local backend's run of
it, parameter comparison."""
from pathlib import Path

from distbp import comm as C
from distbp.data import ensure_prepared
from distbp.train.trainer import Trainer
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


def _local_worker(rank, cfg, out):
    return Trainer(cfg, out, C.init("local", timeout=60)).fit()


def run_local(tmp_path, name, cfg):
    """`cfg` trained by the local backend (processes, ring all-reduce) -> its run directory."""
    out = run_dir(tmp_path, name, cfg)
    C.spawn(_local_worker, args=(cfg, str(out)), nprocs=cfg["dist"]["workers"], timeout=120)
    return out
