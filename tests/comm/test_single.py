"""The size-1 backend runs the same body, and the ring's chunking covers every element once."""
import numpy as np

import distbp.comm
from distbp.comm import ring
from tests.comm import bodies


def test_body_single():
    comm = distbp.comm.init("single")
    summary = bodies.run_all(comm)
    assert summary["size"] == 1 and summary["backend"] == "single"
    comm.close()


def test_auto_is_single_outside_launchers(monkeypatch):
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "DISTBP_LOCAL_SHM"):
        monkeypatch.delenv(var, raising=False)
    assert distbp.comm.init().backend == "single"


def test_chunk_bounds_cover_everything():
    for n in [0, 1, 2, 5, 17, 1000]:
        for size in range(1, 6):
            b = ring.chunk_bounds(n, size)
            assert b[0] == 0 and b[-1] == n and all(x <= y for x, y in zip(b, b[1:]))
            assert max(np.diff(b)) - min(np.diff(b)) <= 1
