"""All-reduce benchmark: distbp's ring (local shared memory and MPI) vs MPI_Allreduce vs gloo.

    python benchmarks/bench_allreduce.py                 # N = 2 and 4, every backend, 5 repetitions
    python benchmarks/bench_allreduce.py --sizes 4K,1M,40M --workers 2 --reps 3

It only runs the user-facing command, which also works on a cluster:

    distbp bench allreduce --backend local --workers N
    mpiexec -n N distbp bench allreduce                    (ring over shared memory: one node)
    mpiexec -n N distbp bench allreduce --transport mpi    (ring over MPI messages)

each of which times MPI_Allreduce (in place) and gloo in the same run. The configurations marked
"symmetric buffer" (--buffer symmetric) reduce a comm.empty() array, which the ranks read from each
other directly; the others, and the peers always, a plain numpy array. A repetition runs every
configuration once; the machine drifts by up to 1.5x between whole runs, so the tables give the
median over repetitions with every repetition's ratio to MPI_Allreduce listed.
Results measured on the project's 2-core machine: benchmarks/results/allreduce.md.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_label(n):
    for unit, scale in (("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def table(runs):
    """runs: the --json results of one configuration, one per repetition -> markdown table."""
    n, sizes = runs[0]["n"], runs[0]["sizes"]
    bus = 2 * (n - 1) / n if n > 1 else 1.0
    lines = ["| size | time (us) | busbw GB/s | MPI_Allreduce busbw | ratio vs MPI (per run) | "
             "gloo busbw | ratio vs gloo |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for i, nbytes in enumerate(sizes):
        t = statistics.median(r["distbp"][i] for r in runs)
        cells = [size_label(nbytes), f"{t * 1e6:.1f}", f"{nbytes * bus / t / 1e9:.2f}"]
        for peer in ("mpi", "gloo"):
            have = [r for r in runs if r.get(peer)]
            if not have:
                cells += ["-", "-"]
                continue
            tp = statistics.median(r[peer][i] for r in have)
            ratios = [r[peer][i] / r["distbp"][i] for r in have]
            per = f" ({'/'.join(f'{x:.2f}' for x in ratios)})" if peer == "mpi" else ""
            cells += [f"{nbytes * bus / tp / 1e9:.2f}", f"{statistics.median(ratios):.2f}{per}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--sizes", default="4K,64K,1M,4M,16M,40M,100M")
    p.add_argument("--iters", default="0")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", help="also write the tables (markdown) to this file")
    args = p.parse_args()
    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    bench = [sys.executable, "-m", "distbp.comm.bench", "allreduce", "--sizes", args.sizes,
             "--iters", args.iters, "--json"]
    configs = {}
    for n in args.workers:
        local = bench + ["--backend", "local", "--workers", str(n)]
        configs[f"local, N={n}"] = local
        configs[f"local, symmetric buffer, N={n}"] = local + ["--buffer", "symmetric"]
        if mpiexec:
            for transport in ("shm", "mpi"):
                configs[f"mpi ({transport} transport), N={n}"] = (
                    [mpiexec, "-n", str(n)] + bench + ["--backend", "mpi", "--transport", transport])
            configs[f"mpi (shm transport), symmetric buffer, N={n}"] = (
                configs[f"mpi (shm transport), N={n}"] + ["--buffer", "symmetric"])
    results = {name: [] for name in configs}
    for rep in range(args.reps):
        for name, cmd in configs.items():
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
            results[name].append(json.loads(lines[-1]))
            print(f"rep {rep + 1}/{args.reps} {name}: load {os.getloadavg()[0]:.1f}", flush=True)
    text = "\n\n".join(f"#### {name}: median over {args.reps} runs\n\n{table(runs)}"
                       for name, runs in results.items())
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
