"""distbp.distributed's collectives and rank facts on 1 rank (in this process), 2-3 local ranks
and 2 MPI ranks."""
import json
import sys

import numpy as np
import pytest

import distbp.distributed as dist
from distbp.comm import spawn
from tests.distributed import bodies


def test_one_rank_in_process():
    facts = bodies.run_all()
    assert facts == {"rank": 0, "size": 1, "local_rank": 0, "backend": "single",
                     "group": "SingleCommunicator(rank=0, size=1)"}


@pytest.mark.parametrize("size", [2, 3])
def test_local_world(size):
    facts = spawn(bodies.run_all, nprocs=size, timeout=30)
    assert [f["rank"] for f in facts] == list(range(size))
    assert {f["size"] for f in facts} == {size} and {f["backend"] for f in facts} == {"local"}
    assert [f["local_rank"] for f in facts] == list(range(size))


def test_before_init():
    assert not dist.is_initialized()
    assert dist.get_rank() == -1 and dist.get_world_size() == -1
    with pytest.raises(RuntimeError, match=r"^Default process group has not been initialized, "
                       r"please make sure to call init_process_group\(\)$"):
        dist._get_default_group()
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        dist.all_reduce(np.ones(2))


def test_init_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"'nccl'\): distbp runs on CPUs"):
        dist.init_process_group("nccl")
    with pytest.raises(RuntimeError, match="started for backend 'single'"):
        dist.init_process_group("local")
    with pytest.raises(ValueError, match=r"world_size=2\) disagrees with the launcher's world_size 1"):
        dist.init_process_group(world_size=2)
    assert not dist.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(RuntimeError, match="WORLD_SIZE=4 but no distbp launcher"):
        dist.init_process_group()
    monkeypatch.delenv("WORLD_SIZE")
    dist.init_process_group("gloo")             # torch's CPU backend name: the launcher's backend
    try:
        with pytest.raises(RuntimeError, match="initialize the default process group twice"):
            dist.init_process_group()
        with pytest.raises(TypeError, match=r"op must be a dist.ReduceOp"):
            dist.all_reduce(np.ones(2), op="sum")
        with pytest.raises(ValueError, match="read-only"):
            dist.all_reduce(np.broadcast_to(np.ones(1), (3,)))
        with pytest.raises(ValueError, match="tensor_list has 2 entries for a world of 1"):
            dist.all_gather([np.ones(1), np.ones(1)], np.ones(1))
    finally:
        dist.destroy_process_group()


def test_mpi_world(tmp_path):
    """The same checks under `mpiexec -n 2`: init_process_group() picks the mpi backend."""
    from tests.distributed.helpers import launch, mpiexec
    if mpiexec() is None:
        pytest.skip("mpiexec not installed (pip install mpich)")
    # One file per rank: two ranks printing to one pipe can interleave their lines.
    code = ("import json; from tests.distributed import bodies; f = bodies.run_all(); "
            "open(f'facts{f[\"rank\"]}.json', 'w').write(json.dumps(f))")
    proc, left = launch([mpiexec(), "-n", "2", sys.executable, "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = [json.loads((tmp_path / f"facts{r}.json").read_text()) for r in range(2)]
    assert [(f["rank"], f["local_rank"], f["backend"]) for f in facts] == [(0, 0, "mpi"), (1, 1, "mpi")]
    assert not left


def test_spawn_hands_each_function_its_rank():
    assert spawn(bodies.rank_and_args, args=("a", 1), nprocs=2) == [[0, 0, "a", 1], [1, 1, "a", 1]]
    with pytest.raises(TypeError, match=r"args must be a tuple, got 2 \(fn gets its rank first"):
        spawn(bodies.rank_and_args, 2)                  # the old spawn(fn, nprocs) order
