"""Ways to combine gradients, same model, workers and global batch: the Ray parameter server (1 and 2
server shards) against the MPI ring all-reduce and the local (shared-memory ring) backend.

    python benchmarks/bench_backends.py                     # mnist1d_mlp, 2 workers, 300 steps, 3 reps
    python benchmarks/bench_backends.py --config configs/mnist1d_cnn.yaml --reps 5 \
        --out benchmarks/results/backends.md

Every run: 2 workers, 1 BLAS thread each, global batch 128, float32, no evaluation or checkpoints
during training. Rows:
    local     distbp train --backend local --workers 2               (subprocess)
    mpi       mpiexec -n 2 distbp train --backend mpi                (subprocess)
    ray ps=K  distbp.ray.launch.run_ray with dist.ps_shards=K        (in this process: Ray is
              started once with the settings `distbp train --backend ray` uses, as a user's
              cluster would be; the actors are new for every run)
samples/s is taken from metrics.jsonl between the first log point (--warmup) and the last step, so
start-up (processes, actors, Ray) is excluded for every backend alike. Repetitions are interleaved
(each repetition runs every backend once) so background load hits them alike; the table shows the
median and the spread over repetitions, and each row's ratio to the MPI ring.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sets(args):
    return [f"train.steps={args.steps}", f"train.log_every={args.warmup}", "train.eval_every=0",
            "train.threads=1", "train.global_batch_size=128", "train.dtype=float32",
            "checkpoint.every_steps=0", "dist.workers=2"]


def windowed_sps(out, warmup, batch=128):
    """samples/s between the first log point and the last step (records carry cumulative s/s)."""
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["kind"] == "train"]
    first = next(r for r in recs if r["step"] >= warmup)
    last = recs[-1]
    t = lambda r: r["step"] * batch / r["samples_per_second"]  # noqa: E731  cumulative train time
    return (last["step"] - first["step"]) * batch / (t(last) - t(first))


def run_cli(args, out, backend):
    cmd = [sys.executable, "-m", "distbp.cli", "train", "--config", str(args.config), "--out",
           str(out), "--force", "--quiet", "--backend", backend]
    for s in sets(args):
        cmd += ["--set", s]
    if backend == "mpi":
        mpiexec = Path(sys.executable).parent / "mpiexec"
        mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
        cmd = [mpiexec, "-n", "2"] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def run_ray_once(args, out, shards):
    from distbp.data import ensure_prepared
    from distbp.train.ray_trainer import run_ray
    from distbp.train.config import dump_config, load_config
    cfg = load_config(args.config, sets(args) + ["dist.backend=ray", f"dist.ps_shards={shards}"])
    ensure_prepared(cfg["data"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    dump_config(cfg, out / "config.yaml")
    run_ray(cfg, out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs/mnist1d_mlp.yaml")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = p.parse_args()
    args.config = args.config.resolve()

    import ray
    from distbp.ray.launch import SYSTEM_CONFIG
    os.chdir(ROOT)                                  # data/ paths in the configs are relative
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _system_config=SYSTEM_CONFIG)           # what `distbp train --backend ray` starts
    rows = {"local": lambda o: run_cli(args, o, "local"), "mpi": lambda o: run_cli(args, o, "mpi"),
            "ray ps=1": lambda o: run_ray_once(args, o, 1),
            "ray ps=2": lambda o: run_ray_once(args, o, 2)}
    results = {name: [] for name in rows}
    tmp = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    for rep in range(args.reps):
        for name, run in rows.items():
            out = tmp / f"{name.replace(' ', '').replace('=', '')}-{rep}"
            run(out)
            results[name].append(windowed_sps(out, args.warmup))
            print(f"rep {rep} {name}: {results[name][-1]:.0f} samples/s", file=sys.stderr)
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

    mpi = statistics.median(results["mpi"])
    lines = [f"Model {args.config.name}, 2 workers x 1 thread, global batch 128, float32, "
             f"{args.steps} steps (samples/s over steps {args.warmup}-{args.steps}), "
             f"{args.reps} interleaved repetitions, {os.cpu_count()} cores.", "",
             "| backend | samples/s (median) | min - max | vs MPI ring |",
             "|---|---:|---:|---:|"]
    for name, v in results.items():
        med = statistics.median(v)
        lines.append(f"| {name} | {med:.0f} | {min(v):.0f} - {max(v):.0f} | {med / mpi:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text("# Ray parameter server vs MPI ring vs local\n\n"
                            "`python benchmarks/bench_backends.py --out "
                            "benchmarks/results/backends.md`\n\n" + table + "\n")


if __name__ == "__main__":
    main()
