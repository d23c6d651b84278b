
import pytest

from tests.failures.helpers import Run


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """The synthetic data set, prepared once; tests symlink it as ./data."""
    from distbp.data.builtins import prepare
    root = tmp_path_factory.mktemp("failures-data")
    prepare("synthetic", root / "synthetic")
    return root


@pytest.fixture
def work(tmp_path, synthetic):
    (tmp_path / "data").symlink_to(synthetic)
    return tmp_path


@pytest.fixture
def runs():
    """Start runs through this list; whatever is left of them is killed at teardown."""
    started = []

    def start(*args, **kwargs):
        run = Run(*args, **kwargs)
        started.append(run)
        return run
    yield start
    for run in started:
        run.kill_all()
        if run.proc.poll() is None:
            run.proc.wait(10)
        run.remove_mpich_leftovers()
