import os

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """One small in-process Ray for a whole test module (starting Ray costs seconds)."""
    ray = pytest.importorskip("ray")
    from distbp.ray.launch import SYSTEM_CONFIG
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="distbp",
             log_to_driver=False, _system_config=SYSTEM_CONFIG)
    yield ray
    ray.shutdown()


@pytest.fixture
def in_tmp(tmp_path, tmp_path_factory):
    """cwd = tmp_path, with one synthetic data set shared by the whole session."""
    shared = tmp_path_factory.getbasetemp() / "ray-shared-data"
    shared.mkdir(exist_ok=True)
    (tmp_path / "data").symlink_to(shared)
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)
