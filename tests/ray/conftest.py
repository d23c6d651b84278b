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
