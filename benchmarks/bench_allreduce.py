"""All-reduce benchmark: distbp's ring (local shared memory and MPI) vs MPI_Allreduce vs gloo.

    python benchmarks/bench_allreduce.py                 # N = 2 and 4, both backends, 4 tables
    python benchmarks/bench_allreduce.py --sizes 4K,1M,40M --workers 2

It only runs the user-facing command, which also works on a cluster:

    distbp bench allreduce --backend local --workers N
    mpiexec -n N distbp bench allreduce          (equivalently: python -m distbp.comm.bench allreduce)

Results measured on the project's 2-core machine: benchmarks/results/allreduce.md.
"""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--sizes", default="4K,64K,1M,4M,16M,40M,100M")
    p.add_argument("--iters", default="0")
    args = p.parse_args()
    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    bench = [sys.executable, "-m", "distbp.comm.bench", "allreduce", "--sizes", args.sizes,
             "--iters", args.iters]
    for n in args.workers:
        runs = [bench + ["--backend", "local", "--workers", str(n)]]
        if mpiexec:
            runs.append([mpiexec, "-n", str(n)] + bench + ["--backend", "mpi"])
        for cmd in runs:
            print("$", " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
            subprocess.run(cmd, env=env, cwd=ROOT, check=True)
            print(flush=True)


if __name__ == "__main__":
    main()
