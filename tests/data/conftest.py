"""Built-in datasets prepared once per test session (mnist1d generation takes a few seconds)."""
import pytest

from distbp.data import prepare


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """name -> path of the prepared built-in, made on first request."""
    root = tmp_path_factory.mktemp("builtins")
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = prepare(name, root / name)
        return cache[name]
    return get
