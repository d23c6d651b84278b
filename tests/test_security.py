"""Security properties that hold by construction, checked on the shipped sources: nothing loads a
pickle from disk or the network, configs are parsed as data, and the Ray scripts we ship keep token
authentication on and the dashboard on loopback."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = sorted((ROOT / "distbp").rglob("*.py"))

FORBIDDEN = [
    (r"^\s*(import pickle|from pickle|import cPickle|import dill|import joblib)", "pickle import"),
    (r"pickle\.loads?\(", "unpickling"),
    (r"allow_pickle\s*=\s*True", "numpy pickle loading"),
    (r"yaml\.(load|unsafe_load|full_load)\(", "non-safe YAML loading"),
    (r"(?<![\w.])(?<!def )(eval|exec)\(", "eval/exec of text"),
]


@pytest.mark.parametrize("pattern, what", FORBIDDEN, ids=[w for _, w in FORBIDDEN])
def test_no_unsafe_loading_in_distbp(pattern, what):
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in SOURCES
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(pattern, line)]
    assert not hits, f"{what} in {hits}"


def test_np_load_is_always_pickle_free():
    for p in SOURCES:
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if "np.load(" in line:
                assert "allow_pickle=False" in line, f"{p.relative_to(ROOT)}:{i}"


def test_ray_scripts_keep_token_auth_and_loopback_dashboard():
    head = (ROOT / "launch" / "ray_head.sh").read_text()
    assert "RAY_AUTH_MODE=token" in head or 'RAY_AUTH_MODE:-token' in head
    assert "--dashboard-host=127.0.0.1" in head or "--dashboard-host 127.0.0.1" in head
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "ports:" not in compose, "docker-compose.yml publishes a port"
