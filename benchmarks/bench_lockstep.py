"""The machine's own ceiling for synchronous data parallelism: fixed numpy work, no trainer, no comm.

    python benchmarks/bench_lockstep.py                       # mlp + cnn step lengths, 8 rounds (~6-10 min)
    python benchmarks/bench_lockstep.py --models mlp --rounds 12 --out benchmarks/results/lockstep.md

A synchronous data-parallel worker waits for its peers at every step, so a step lasts as long as the
slowest rank's. On cores that run at a steady speed that costs little; on a VM whose cores speed up
and slow down for tens of steps at a time (other tenants on the host), every step pays the gap
between the two cores of the moment. This program measures that price with no trainer and no
communication library at all, so the number belongs to the machine, not to distbp. Every round runs,
in rotating order:

    1 process   a fixed numpy "step" (a 128 x 256 batch through k layers of tanh(x @ W), 1 BLAS
                thread), k chosen so that the step lasts as long as one distbp 1-worker step of the
                model (calibrated once, from the first distbp run)
    pair        two such processes at once, independent (what the two cores give)
    lockstep    the same two, each waiting for the other after every step on a counter in shared
                memory (a busy-wait, as distbp's transport does; nothing is exchanged)
    distbp 1 / 2 workers   `distbp train --workers 1` and `--workers 2`, 128 samples per worker

"2 vs 1" is samples/s with two processes (or workers) over samples/s with one: the median of the
per-round ratios, then every round's ratio. The issue's goal for distbp is >= 1.8x; the lockstep row
is what any synchronous trainer could reach here with free communication and free bookkeeping. The
host-noise line gives the single process's step times: coefficient of variation (std / mean) and
lag-1 autocorrelation (how much a slow step predicts a slow next step).
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_training as bt  # noqa: E402  (the distbp runner and the data preparation are shared)

BATCH, WIDTH = 128, 256
DEFAULT_STEPS = {"mlp": 1500, "cnn": 300}   # the MLP's step is ~2.5 ms, the CNN's ~17 ms


# ---------------------------------------------------------------- the probe (its own interpreter)

def _fixed_step(x, w, layers):
    for _ in range(layers):
        x = np.tanh(x @ w * 0.01)
    return x


def _probe_worker(rank, lockstep, layers, steps, counters, start, results):
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    rng = np.random.default_rng(rank)
    x = rng.random((BATCH, WIDTH), dtype=np.float32)
    w = rng.random((WIDTH, WIDTH), dtype=np.float32)
    seen = np.frombuffer(counters.get_obj(), np.int64)     # seen[r]: steps rank r has finished
    for _ in range(20):
        _fixed_step(x, w, layers)
    start.wait()
    times = np.empty(steps)
    t_begin = time.perf_counter()
    for i in range(steps):
        t0 = time.perf_counter()
        _fixed_step(x, w, layers)
        times[i] = time.perf_counter() - t0
        if lockstep:
            seen[rank] = i + 1
            while seen[1 - rank] < i + 1:      # busy-wait for the peer's step i
                pass
    results.put((rank, steps * BATCH / (time.perf_counter() - t_begin), times.tolist()))


def probe(mode, layers, steps):
    """-> {"sps": total samples/s, "step_ms": [per-step ms of rank 0]} for mode 1|pair|lockstep."""
    ctx = mp.get_context("fork")
    n = 1 if mode == "1" else 2
    counters, start, results = ctx.Array("q", 2), ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_probe_worker,
                         args=(r, mode == "lockstep", layers, steps, counters, start, results))
             for r in range(n)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    return {"sps": sum(g[1] for g in got), "step_ms": [1e3 * t for t in got[0][2]]}


def probe_run(mode, layers, steps):
    """One probe in a fresh interpreter with 1 BLAS thread, as the distbp runs get."""
    out = bt.run_checked([sys.executable, __file__, "--probe", mode, str(layers), str(steps)])
    return json.loads(out.splitlines()[-1])


def calibrate(step_ms):
    """Layers of fixed work that last about step_ms on one process."""
    one = probe_run("1", 1, 400)
    return max(1, round(step_ms / statistics.median(one["step_ms"])))


# ---------------------------------------------------------------- report

def noise(step_ms):
    t = np.asarray(step_ms)
    return t.std() / t.mean(), float(np.corrcoef(t[:-1], t[1:])[0, 1])


def table(model, layers, res, cvs):
    rows = [f"| {model} | run | samples/s (median) | 2 vs 1: median of rounds | every round |",
            "|---|---|---:|---:|---|"]
    for name, ref in (("1 process", None), ("pair", "1 process"), ("lockstep", "1 process"),
                      ("distbp 1 worker", None), ("distbp 2 workers", "distbp 1 worker")):
        med = statistics.median(res[name])
        if ref is None:
            rows.append(f"| | {name} | {med:.0f} | | |")
            continue
        per = [a / b for a, b in zip(res[name], res[ref])]
        rows.append(f"| | {name} | {med:.0f} | **{statistics.median(per):.2f}x** | "
                    + " / ".join(f"{x:.2f}" for x in per) + " |")
    step = 1e3 * BATCH / statistics.median(res["1 process"])
    cv = statistics.median(c for c, _ in cvs)
    ac = statistics.median(a for _, a in cvs)
    return ("\n".join(rows) + f"\n\nFixed work: {layers} layers, {step:.1f} ms per step alone. "
            f"Host noise, 1 process: step-time coefficient of variation {cv:.0%} (median of rounds, "
            f"{min(c for c, _ in cvs):.0%}-{max(c for c, _ in cvs):.0%}), lag-1 autocorrelation "
            f"{ac:.2f}.")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=list(bt.CONFIGS))
    p.add_argument("--steps", type=int, help="timed steps per run (default: mlp 1500, cnn 300)")
    p.add_argument("--warmup", type=int, default=20, help="untimed first steps of distbp runs")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--out", help="also write the tables (markdown) to this file")
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="distbp-lockstep-")).resolve()
    bt.prepare_data(work)
    tables = []
    for model in args.models:
        steps = args.steps or DEFAULT_STEPS[model]
        total = args.warmup + steps
        first = bt.distbp_run(model, 1, total, args.warmup, work)
        layers = calibrate(1e3 * BATCH / first["sps"])
        print(f"{model}: distbp step {1e3 * BATCH / first['sps']:.2f} ms -> {layers} layers of "
              "fixed work", flush=True)
        jobs = [
            ("1 process", lambda: probe_run("1", layers, steps)),
            ("pair", lambda: probe_run("pair", layers, steps)),
            ("lockstep", lambda: probe_run("lockstep", layers, steps)),
            ("distbp 1 worker", lambda: bt.distbp_run(model, 1, total, args.warmup, work)),
            ("distbp 2 workers", lambda: bt.distbp_run(model, 2, total, args.warmup, work,
                                                       batch=2 * BATCH)),
        ]
        runs = bt.run_rounds(jobs, args.rounds, model)
        res = {name: [r["sps"] for r in rs] for name, rs in runs.items()}
        cvs = [noise(r["step_ms"]) for r in runs["1 process"]]
        tables.append(table(model, layers, res, cvs))
    head = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
            f"{args.rounds} rounds in rotating order, 1 thread per process, 128 samples per process "
            f"and step; load average before / after: {load0:.1f} / {os.getloadavg()[0]:.1f}")
    text = head + "\n\n" + "\n\n".join(tables) + "\n"
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        print(json.dumps(probe(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
