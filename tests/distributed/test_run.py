"""`distbp run`: the tiny script on 2-3 local ranks, its failures named; the same bits under
`distbp run`, `mpiexec` and `distbp run --backend ray`."""
import json
import sys
from pathlib import Path

import pytest

from tests.distributed.helpers import distbp_run, launch, mpiexec

SCRIPT = Path(__file__).with_name("tiny_script.py")


def test_local_ranks_get_torchruns_environment(tmp_path):
    proc, left = launch(distbp_run("--nproc-per-node", "3", str(SCRIPT), "out.json"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads((tmp_path / "out.json").read_text())["facts"]
    assert facts == [{"rank": r, "local_rank": r, "env_rank": str(r), "backend": "local"}
                     for r in range(3)]
    assert not left


@pytest.mark.parametrize("how,says", [
    ("raise", "rank 2 of 3 failed: ValueError: rank 2 is broken on purpose"),
    ("exit", "rank 2 of 3 exited with code 3 during allreduce"),
    ("kill", "rank 2 of 3 was killed by SIGKILL during allreduce"),
    ("hang", "rank 2 of 3 stopped answering during allreduce"),
])
def test_local_failure_is_named(tmp_path, how, says):
    proc, left = launch(distbp_run("--nproc-per-node", "3", "--timeout", "2", str(SCRIPT),
                                   "out.json", "--fail", f"2:{how}"), tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith(f"distbp run: error: {says}"), proc.stderr
    if how == "raise":        # the rank's traceback, from the script's frame on
        assert f'File "{SCRIPT}", line' in proc.stderr and "runpy" not in proc.stderr
    assert not left, f"processes left running: {left}"
    assert not (tmp_path / "out.json").exists()


def test_max_restarts_starts_the_group_again(tmp_path):
    """Rank 1 is killed in the first attempt only: the group starts again (torchrun's restart
    count in the environment) and ends with the parameters of a run that never failed."""
    clean, _ = launch(distbp_run("--nproc-per-node", "2", str(SCRIPT), "clean.json"), tmp_path)
    assert clean.returncode == 0, clean.stderr[-3000:]
    proc, left = launch(distbp_run("--nproc-per-node", "2", "--max-restarts", "2", str(SCRIPT),
                                   "out.json", "--fail", "1:kill", "--fail-attempt", "0"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2 was killed by SIGKILL" in proc.stderr and "restart 1/2" in proc.stderr
    assert proc.stderr.count("restart ") == 1, proc.stderr
    out, ref = (json.loads((tmp_path / f).read_text()) for f in ("out.json", "clean.json"))
    assert out["params"] == ref["params"]
    assert not left
    again, _ = launch(distbp_run("--nproc-per-node", "2", "--max-restarts", "1", str(SCRIPT),
                                 "x.json", "--fail", "1:exit"), tmp_path)   # fails every attempt
    assert again.returncode == 1 and again.stderr.count("restart 1/1") == 1, again.stderr


def test_usage_errors(tmp_path, capsys, monkeypatch):
    from distbp.cli import main
    monkeypatch.chdir(tmp_path)
    for flags, says in ((["--nnodes", "2"], "the local backend runs on one node"),
                        (["--master-addr", "10.0.0.1"], "needs no rendezvous host"),
                        (["--nproc-per-node", "0"], "--nproc-per-node '0'"),
                        (["--backend", "ray", "--node-rank", "1"], "--node-rank")):
        assert main(["run", *flags, str(SCRIPT), "out.json"]) == 2
        assert says in capsys.readouterr().err
    assert main(["run", "missing.py"]) == 2
    assert "distbp run: error: script 'missing.py' not found" in capsys.readouterr().err


def same_bits(tmp_path, runs):
    """2 ranks: a sum of two partial gradients is the same in either order, so every launcher must
    give the same bits as `distbp run`."""
    runs = {"local": distbp_run("--nproc-per-node", "2", str(SCRIPT), "local.json"), **runs}
    results = {}
    for name, cmd in runs.items():
        proc, left = launch(cmd, tmp_path, timeout=240)
        assert proc.returncode == 0, f"{name}: {proc.stderr[-3000:]}"
        assert not left, f"{name} left processes running: {left}"
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    for name, res in results.items():
        assert [f["backend"] for f in res["facts"]] == [name] * 2
        assert [f["local_rank"] for f in res["facts"]] == [0, 1]
        assert res["params"] == results["local"]["params"], name


@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")
def test_same_bits_under_mpiexec(tmp_path):
    same_bits(tmp_path, {"mpi": [mpiexec(), "-n", "2", sys.executable, str(SCRIPT), "mpi.json"]})


@pytest.mark.slow
def test_same_bits_on_ray(tmp_path):
    pytest.importorskip("ray")
    same_bits(tmp_path, {"ray": distbp_run("--backend", "ray", "--address", "local",
                                           "--nproc-per-node", "2", str(SCRIPT), "ray.json")})


@pytest.mark.slow
def test_ray_mismatched_collectives_are_named(tmp_path):
    """Rank 1 skips one gradient's all_reduce (a branch the other rank did not take): the next
    call pairs a 40-float all_reduce with an 8-float one. Named at once, with both calls, not
    reduced into a wrong result."""
    pytest.importorskip("ray")
    proc, left = launch(distbp_run("--backend", "ray", "--address", "local", "--nproc-per-node",
                                   "2", "--timeout", "20", str(SCRIPT), "out.json", "--fail",
                                   "1:branch"), tmp_path, timeout=240)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "mismatched collectives: rank " in last, proc.stderr[-3000:]
    assert "allreduce(float64, count=40" in last and "allreduce(float64, count=8" in last, last
    assert not (tmp_path / "out.json").exists() and not left, left


@pytest.mark.slow
@pytest.mark.parametrize("how,says", [("raise", "rank 1 of 2 failed: ValueError: rank 1 is broken"),
                                      ("kill", "rank 1 of 2 died"),
                                      ("hang", "rank 1 of 2 stopped answering: rank 0 saw")])
def test_ray_failure_is_named(tmp_path, how, says):
    pytest.importorskip("ray")
    proc, left = launch(distbp_run("--backend", "ray", "--address", "local", "--nproc-per-node",
                                   "2", "--timeout", "5", str(SCRIPT), "out.json", "--fail",
                                   f"1:{how}"), tmp_path, timeout=240)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith(f"distbp run: error: {says}"), proc.stderr[-3000:]
    assert not left, f"processes left running: {left}"
