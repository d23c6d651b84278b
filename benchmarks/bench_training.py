"""Data-parallel training throughput: distbp with 1 and 2 workers against PyTorch DDP (gloo).

    python benchmarks/bench_training.py                          # mlp + cnn, 200 steps, 3 repetitions
    python benchmarks/bench_training.py --models cnn --steps 300 --reps 7 --out benchmarks/results/training.md

Every run uses 1 BLAS/intra-op thread per worker. "scaling" = samples/s with 2 workers / samples/s
with 1 worker; linear is 2.0 and the issue's goal is >= 1.8 (the 90% efficiency Horovod and DDP
report). Two ways to add a worker, both measured:
  * weak scaling (how Horovod's and DDP's efficiency figures are measured): the batch per worker
    stays 128, so 2 workers train on a global batch of 256; each worker does the 1-worker run's
    work and the loss is communication, waiting for the slower rank and the per-step costs;
  * strong scaling: the global batch stays 128 (64 per worker with 2), the shipped configs'
    trajectory; a step then also pays its fixed costs (optimizer, data, Python dispatch) on half
    the samples, see the "compute ceiling" column.

distbp rows run the user-facing command, one subprocess per run:
    distbp train --config configs/mnist1d_<model>.yaml --workers W --set train.threads=1 ...
    mpiexec -n 2 distbp train ... --backend mpi          (if mpiexec is next to sys.executable)
Its samples/s is taken from metrics.jsonl between the first log point (step --warmup) and the last
step, so start-up and the first, slow steps are excluded (summary.json's figure includes them; both
are printed). Eval and checkpoints are outside the timed region in the trainer anyway.
2-worker runs shard the optimizer (dist.shard_optimizer, the default: gradients reduce-scattered,
each rank updates half the parameters, which are then all-gathered); one more row runs them with
dist.shard_optimizer=false (every rank runs the whole optimizer step after an all-reduce).
A separate 2-worker run with --trace gives the overlap fraction (share of all-reduce time that ran
while backward was still running); the exposed communication per step is the time waiting for the
reduction after backward ended (mostly waiting for the slower rank). With the configs' 1 MB bucket
each model is one bucket, reduced after backward (overlap 0% by design), so one more traced run
uses dist.bucket_mb=0.05: several buckets, all but the last reduced while backward runs.
"compute ceiling" is the scaling 2 workers would reach if communication were free: a 1-worker run
with global batch 64 does one worker's share of a 2-worker step, so ceiling = 2 * sps(64) / sps(128).
It separates per-step fixed costs (Python dispatch, small-matrix inefficiency) from communication.

Two ceiling rows exchange no gradients at all: "2 independent trainings at once" (two 1-worker
runs side by side: what the cores give) and "2 trainings, a barrier per step" (the same two runs,
but in lockstep, as synchronous data-parallel workers are). Their samples/s add up; the gap between
them is the price of lockstep itself on this machine, before any communication.

PyTorch rows: the same architecture (nn.Sequential), AdamW with the same lr and weight decay, the
MNIST-1D training set held in memory, torch.multiprocessing spawn, init_process_group("gloo"),
DistributedDataParallel, torch.set_num_threads(1). No augmentation (distbp's cnn config adds a
random shift per sample, which costs it a little). Timed after --warmup steps, between barriers.

The configurations of one repetition run one after another in a rotating order, so background load
hits them alike; tables show the median over repetitions and the spread (max/min - 1).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"mlp": ROOT / "configs" / "mnist1d_mlp.yaml", "cnn": ROOT / "configs" / "mnist1d_cnn.yaml"}
GLOBAL_BATCH = 128


def one_thread_env(extra=None):
    env = {**os.environ, **(extra or {})}
    env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def prepare_data(work):
    """The MNIST-1D Parquet files all runs of a benchmark read, made once under `work`."""
    subprocess.run([sys.executable, "-m", "distbp.cli", "data", "prepare", "mnist1d", "--out",
                    str(work / "data" / "mnist1d")], env=one_thread_env(), cwd=work, check=True,
                   capture_output=True)


def run_rounds(jobs, rounds, label):
    """Run every (name, thunk) of `jobs` once per round, the order rotating by one each round (so
    the host's slow spells hit every job alike) -> {name: [each round's result dict]}."""
    out = {name: [] for name, _ in jobs}
    for r in range(rounds):
        shift = r % len(jobs)
        for name, run in jobs[shift:] + jobs[:shift]:
            t = time.perf_counter()
            out[name].append(run())
            print(f"round {r + 1}/{rounds} {label} {name}: {out[name][-1]['sps']:.0f} samples/s "
                  f"[{time.perf_counter() - t:.0f} s]", flush=True)
    return out


def run_checked(cmd, env=None, cwd=None):
    """Run one benchmark subprocess with 1 BLAS thread -> its stdout; its stderr's tail if it fails."""
    res = subprocess.run(cmd, env=one_thread_env(env), cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return res.stdout


def find_mpiexec():
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


# ---------------------------------------------------------------- distbp: one `distbp train` run

def distbp_run(model, workers, steps, warmup, work, backend="local", trace=False, mpiexec=None,
               batch=GLOBAL_BATCH, bucket_mb=None, env=None, sets=()):
    """-> dict(sps, sps_summary, comm, exposed, overlap) from one training run in a subprocess;
    `sets`: more --set key=value overrides."""
    out = work / "runs" / (f"{model}-{backend}-{workers}-{batch}-{bucket_mb}{'-trace' if trace else ''}"
                           + "".join("-" + s.replace("=", "_") for s in sets))
    cmd = [sys.executable, "-m", "distbp.cli", "train", "--config", str(CONFIGS[model]),
           "--out", str(out), "--force", "--quiet",
           "--set", f"train.steps={steps}", "--set", "train.threads=1",
           "--set", f"train.global_batch_size={batch}",
           "--set", f"train.log_every={warmup}", "--set", "train.eval_every=0",
           "--set", "checkpoint.every_steps=0", "--set", f"data.path={work / 'data' / 'mnist1d'}"]
    if bucket_mb is not None:
        cmd += ["--set", f"dist.bucket_mb={bucket_mb}"]
    for kv in sets:
        cmd += ["--set", kv]
    if backend == "mpi":
        cmd = [mpiexec, "-n", str(workers)] + cmd + ["--backend", "mpi"]
    else:
        cmd += ["--workers", str(workers)]
    if trace:
        cmd.append("--trace")
    run_checked(cmd, env, work)
    summary = json.loads((out / "summary.json").read_text())
    return {"sps": timed_sps(out, batch),
            "sps_summary": summary["samples_per_second"],
            "comm_ms": 1e3 * summary["comm_seconds"] / steps,
            "exposed_ms": 1e3 * summary["exposed_comm_seconds"] / steps,
            "overlap": summary.get("overlap_fraction")}


def timed_sps(out, batch):
    """samples/s between the first log point (step --warmup) and the last step, from metrics.jsonl."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    # the logged samples/s is cumulative: elapsed(step) = step * batch / sps(step)
    (s0, r0), (s1, r1) = (train[0]["step"], train[0]), (train[-1]["step"], train[-1])
    t0 = s0 * batch / r0["samples_per_second"]
    t1 = s1 * batch / r1["samples_per_second"]
    return (s1 - s0) * batch / (t1 - t0)


# ---------------------------------------------------------------- ceilings: two trainings, no exchange
# What the machine gives two workers before any gradient is exchanged. "pair": two independent
# 1-worker trainings at the same time (the cores' ceiling). "lockstep": the same two trainings, but
# both wait at a barrier after every step, as synchronous data-parallel workers do (no gradients
# move). On this 2-vCPU VM lockstep cost 17% (CNN) and 27% (MLP) of the pair's samples/s in the
# session-3 medians, mostly because waiting ranks slept at every step: with the transport's
# busy-wait (session 4) it costs 5-6% (bench_waiting.py measures both ways of waiting).

def _ceiling_worker(rank, cfg, out, lockstep):
    from distbp import comm as C
    from distbp.train.trainer import Trainer
    link = C.init("local")                            # only for the barrier
    out = Path(out) / f"rank{link.rank}"
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, out, C.init("single"), quiet=True)
    if lockstep:
        step = trainer.train_step

        def train_step(*args):
            result = step(*args)
            link.barrier()
            return result
        trainer.train_step = train_step
    trainer.fit()
    return str(out)


def _ceiling_main(model, batch, steps, warmup, work, lockstep):
    """Runs in its own interpreter (see ceiling_run); prints the two workers' samples/s as JSON."""
    from distbp import comm as C
    from distbp.train.config import load_config
    cfg = load_config(CONFIGS[model], [
        f"train.steps={steps}", "train.threads=1", f"train.global_batch_size={batch}",
        f"train.log_every={warmup}", "train.eval_every=0", "checkpoint.every_steps=0",
        f"data.path={Path(work) / 'data' / 'mnist1d'}"])
    out = Path(tempfile.mkdtemp(dir=work, prefix=f"{model}-ceiling-"))
    dirs = C.spawn(_ceiling_worker, args=(cfg, str(out), lockstep == "lockstep"), nprocs=2)
    print(json.dumps([timed_sps(Path(d), batch) for d in dirs]))


def ceiling_run(model, steps, warmup, work, lockstep, batch, env=None):
    """-> dict(sps) for 2 workers that each train on `batch` samples per step, exchanging nothing."""
    cmd = [sys.executable, __file__, "--ceiling", model, str(batch), str(steps), str(warmup),
           str(work), "lockstep" if lockstep else "pair"]
    return {"sps": sum(json.loads(run_checked(cmd, env, work).splitlines()[-1]))}


# ---------------------------------------------------------------- PyTorch DDP peer

def torch_model(name):
    import torch.nn as nn
    if name == "mlp":                       # configs/mnist1d_mlp.yaml: hidden [256, 256]
        return nn.Sequential(nn.Flatten(), nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256),
                             nn.ReLU(), nn.Linear(256, 10))
    layers, c, length = [], 1, 40           # configs/mnist1d_cnn.yaml: channels [32, 64, 128]
    for out in (32, 64, 128):
        layers += [nn.Conv1d(c, out, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2)]
        c, length = out, length // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * length, 10))


def load_mnist1d(work):
    import pyarrow.parquet as pq
    table = pq.read_table(work / "data" / "mnist1d" / "train.parquet")
    x = np.asarray(table.column("features").combine_chunks().flatten(), np.float32)
    return x.reshape(-1, 1, 40), np.asarray(table.column("label"), np.int64)


def _torch_worker(rank, world, port, name, steps, warmup, work, batch, queue):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    from distbp.train.allocator import keep_heap
    torch.set_num_threads(1)
    keep_heap()     # the same allocator settings distbp's workers use (both sides alike)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    torch.manual_seed(0)
    model = DDP(torch_model(name))
    lr = {"mlp": 0.002, "cnn": 0.003}[name]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    x, y = load_mnist1d(Path(work))
    x, y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    local = batch // world
    rng = np.random.default_rng(0)
    t0 = None
    for step in range(warmup + steps):
        if step == warmup:
            dist.barrier()
            t0 = time.perf_counter()
        idx = rng.choice(len(x), batch, replace=False)[rank * local:(rank + 1) * local]
        idx = torch.from_numpy(idx)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    dist.barrier()
    elapsed = time.perf_counter() - t0
    if rank == 0:
        queue.put(steps * batch / elapsed)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torch_run(name, world, steps, warmup, work, batch=GLOBAL_BATCH):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.spawn(_torch_worker, args=(world, free_port(), name, steps, warmup, str(work), batch, queue),
             nprocs=world, join=True)
    return {"sps": queue.get()}


# ---------------------------------------------------------------- the table

def spread(values):
    return max(values) / min(values) - 1 if len(values) > 1 else 0.0


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, pattern):
    return "-" if v is None else pattern.format(v)


# The overlap row: several small buckets, so all but the last are reduced while backward runs (with
# the configs' 1 MB, each model is one bucket, reduced after backward: nothing to overlap).
SMALL_BUCKET_MB = 0.05
BATCH_OF = {("strong", 1): GLOBAL_BATCH, ("strong", 2): GLOBAL_BATCH,
            ("weak", 1): GLOBAL_BATCH, ("weak", 2): 2 * GLOBAL_BATCH}   # global batch


def table(models, modes, results):
    """results: (model, impl, workers, mode) -> list of run dicts; 1-worker runs use mode None."""
    lines = ["| model | scaling | implementation | workers | global batch | samples/s (median) | "
             "spread | 2 vs 1 worker | compute ceiling | distbp / torch | overlap | "
             "all-reduce ms/step | exposed ms/step |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    label = {"distbp": "distbp local", "distbp-mpi": "distbp mpi", "torch": "PyTorch DDP gloo",
             "distbp-buckets": f"distbp local, dist.bucket_mb={SMALL_BUCKET_MB} (traced)",
             "distbp-unsharded": "distbp local, dist.shard_optimizer=false",
             "pair": "ceiling: 2 independent trainings at once",
             "lockstep": "ceiling: 2 trainings, a barrier per step, no exchange"}
    for m in models:
        base = {impl: med(results.get((m, impl, 1, None), []), "sps") for impl in ("distbp", "torch")}
        for mode in modes:
            for impl, w in (("distbp", 1), ("pair", 2), ("lockstep", 2), ("distbp", 2),
                            ("distbp-mpi", 2), ("distbp-unsharded", 2), ("distbp-buckets", 2),
                            ("torch", 1), ("torch", 2)):
                runs = results.get((m, impl, w, mode if w > 1 else None))
                if not runs:
                    continue
                sps = med(runs, "sps")
                ref = base["torch" if impl == "torch" else "distbp"]
                peer = med(results.get((m, "torch", w, mode if w > 1 else None), []), "sps")
                trace = runs if impl == "distbp-buckets" else results.get((m, impl + "-trace", w, mode), [])
                ratio = sps / peer if impl.startswith("distbp") and peer else None
                ceiling = None
                if mode == "strong" and impl.startswith("distbp") and w == 2 and ref:
                    # 2 workers with free communication: each does a 64-sample step
                    half = med(results.get((m, "distbp-half", 1, None), []), "sps")
                    ceiling = 2 * half / ref if half else None
                lines.append(
                    f"| {m} | {mode} | {label[impl]} | {w} | {BATCH_OF[mode, w]} | {sps:.0f} | "
                    f"{spread([r['sps'] for r in runs]):.0%} | "
                    f"{fmt(sps / ref if ref and w > 1 else None, '**{:.2f}x**')} | "
                    f"{fmt(ceiling, '{:.2f}x')} | {fmt(ratio, '{:.2f}')} | "
                    f"{fmt(med(trace, 'overlap'), '{:.0%}')} | "
                    f"{fmt(med(runs, 'comm_ms'), '{:.1f}')} | {fmt(med(runs, 'exposed_ms'), '{:.1f}')} |")
    return "\n".join(lines)


def per_rep(models, results):
    """The samples/s of every repetition, so a reader sees the noise behind each median."""
    out = []
    for (m, impl, w, mode), runs in sorted(results.items(), key=str):
        out.append(f"- {m} {impl} {w}w{' ' + mode if mode else ''}: "
                   + " / ".join(f"{r['sps']:.0f}" for r in runs))
    return "\n".join(out)


def versions():
    import torch
    return (f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=list(CONFIGS))
    p.add_argument("--steps", type=int, default=200, help="timed steps after the warm-up")
    p.add_argument("--warmup", type=int, default=20, help="untimed first steps")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--modes", nargs="+", default=["weak", "strong"], choices=["weak", "strong"],
                   help="weak: batch 128 per worker; strong: global batch 128 (default: both)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-mpi", action="store_true")
    p.add_argument("--workdir", help="where data and runs go (default: a temporary directory)")
    p.add_argument("--out", help="also write the table (markdown) to this file")
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="distbp-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    prepare_data(work)
    mpiexec = None if args.no_mpi else find_mpiexec()
    total = args.warmup + args.steps

    jobs = []   # (key, thunk); key = (model, impl, workers, mode or None for 1 worker)
    for m in args.models:
        jobs.append(((m, "distbp", 1, None), lambda m=m: distbp_run(m, 1, total, args.warmup, work)))
        if not args.no_torch:
            jobs.append(((m, "torch", 1, None),
                         lambda m=m: torch_run(m, 1, args.steps, args.warmup, work)))
        if "strong" in args.modes:
            jobs.append(((m, "distbp-half", 1, None), lambda m=m: distbp_run(
                m, 1, total, args.warmup, work, batch=GLOBAL_BATCH // 2)))
        for mode in args.modes:
            b = BATCH_OF[mode, 2]
            jobs.append(((m, "distbp", 2, mode),
                         lambda m=m, b=b: distbp_run(m, 2, total, args.warmup, work, batch=b)))
            jobs.append(((m, "distbp-trace", 2, mode), lambda m=m, b=b: distbp_run(
                m, 2, total, args.warmup, work, trace=True, batch=b)))
            jobs.append(((m, "distbp-unsharded", 2, mode), lambda m=m, b=b: distbp_run(
                m, 2, total, args.warmup, work, batch=b, sets=["dist.shard_optimizer=false"])))
            jobs.append(((m, "distbp-buckets", 2, mode), lambda m=m, b=b: distbp_run(
                m, 2, total, args.warmup, work, trace=True, batch=b, bucket_mb=SMALL_BUCKET_MB)))
            for impl, lockstep in (("pair", False), ("lockstep", True)):
                jobs.append(((m, impl, 2, mode), lambda m=m, b=b, lockstep=lockstep: ceiling_run(
                    m, total, args.warmup, work, lockstep, batch=b // 2)))
            if mpiexec:
                jobs.append(((m, "distbp-mpi", 2, mode), lambda m=m, b=b: distbp_run(
                    m, 2, total, args.warmup, work, backend="mpi", mpiexec=mpiexec, batch=b)))
            if not args.no_torch:
                jobs.append(((m, "torch", 2, mode), lambda m=m, b=b: torch_run(
                    m, 2, args.steps, args.warmup, work, batch=b)))
    results = {}
    for rep in range(args.reps):
        shift = rep % len(jobs)
        for key, run in jobs[shift:] + jobs[:shift]:
            t = time.perf_counter()
            r = run()
            results.setdefault(key, []).append(r)
            print(f"rep {rep + 1}/{args.reps} {'/'.join(str(k) for k in key if k)}: {r['sps']:.0f} samples/s"
                  + (f" (summary {r['sps_summary']:.0f})" if "sps_summary" in r else "")
                  + (f", overlap {r['overlap']:.0%}" if r.get("overlap") is not None else "")
                  + f"  [{time.perf_counter() - t:.0f} s]", flush=True)
    text = table(args.models, args.modes, results) + "\n\nPer repetition (samples/s):\n" + \
        per_rep(args.models, results)
    head = (f"{datetime.date.today()}, {os.cpu_count()} cores, {versions()}; batch {GLOBAL_BATCH} "
            f"per worker (weak) / global (strong), 1 thread per worker, {args.steps} timed steps "
            f"after {args.warmup} warm-up, median of {args.reps} interleaved repetitions; load "
            f"average before / after: {load0:.1f} / {os.getloadavg()[0]:.1f}")
    print("\n" + head + "\n\n" + text)
    if args.out:
        Path(args.out).write_text(head + "\n\n" + text + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ceiling"]:
        _ceiling_main(sys.argv[2], *map(int, sys.argv[3:6]), *sys.argv[6:8])
    else:
        main()
