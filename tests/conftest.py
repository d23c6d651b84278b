import os

import pytest


@pytest.fixture
def in_tmp(tmp_path, tmp_path_factory):
    """cwd = tmp_path, with one data directory (built-in data sets prepared once) for the session."""
    shared = tmp_path_factory.getbasetemp() / "shared-data"
    shared.mkdir(exist_ok=True)
    (tmp_path / "data").symlink_to(shared)
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)
