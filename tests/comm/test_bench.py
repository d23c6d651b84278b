"""`distbp bench allreduce` runs and prints its table (a smoke test: timings are not asserted)."""
import json

import pytest

from distbp.comm import bench
from distbp.errors import UsageError


def test_parse_sizes():
    assert bench.parse_sizes("4K,1M,40MB,100") == [4000, 1_000_000, 40_000_000, 100]
    with pytest.raises(UsageError, match="'4Q'"):
        bench.parse_sizes("4Q")


def test_bench_local_prints_table(capsys):
    assert bench.main(["allreduce", "--backend", "local", "--workers", "2", "--sizes", "4K,100K",
                       "--iters", "2", "--no-peers"]) == 0
    out = capsys.readouterr().out
    assert "backend=local N=2" in out and "busbw" in out
    assert any(line.split()[:2] == ["4", "KB"] for line in out.splitlines())
    assert any(line.split()[:2] == ["100", "KB"] for line in out.splitlines())


def test_bench_symmetric_buffer(capsys):
    assert bench.main(["allreduce", "--backend", "local", "--workers", "2", "--sizes", "2M",
                       "--iters", "2", "--no-peers", "--buffer", "symmetric", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["buffer"] == "symmetric" and len(result["distbp"]) == 1 and result["distbp"][0] > 0
