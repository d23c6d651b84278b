"""What the flight recorder, the always-on mismatch check and the heartbeats cost: this tree against
a baseline tree without them, interleaved in one run.

    git archive <commit before> | tar -x -C /tmp/base          # the peer
    python benchmarks/bench_flight.py --baseline /tmp/base                   # collectives (us/call)
    python benchmarks/bench_flight.py --baseline /tmp/base --train --rounds 3 # CNN, 2 workers
    python benchmarks/bench_flight.py --ablate --train --rounds 8 --steps 1000  # this tree, off/on
    python benchmarks/bench_flight.py --interleave --steps 3000   # off/on every 50 steps, one run

Collectives: 2 local workers time `--calls` calls each of small all-reduces and barriers (the
latency-bound end, where a per-call cost shows most), best of 5 repetitions; each round runs the
baseline and this tree back to back. --train: `distbp train --config configs/mnist1d_cnn.yaml
--set train.steps=300` under each tree, samples/s from summary.json. Prints a table per round and
the median ratio (>1: this tree is slower). --ablate: the baseline is this very tree with the
recorder and the mismatch check patched out (benchmarks/flight_off/sitecustomize.py), so nothing
else differs. --interleave: one CNN training on 2 local workers that switches the recorder and
the check off and on every --block steps (both ranks at the same step), timing each step on
rank 0: host drift hits both modes alike, which whole runs on a shared host do not.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = [8, 1024, 16384, 262144]     # float32 elements: 32 B .. 1 MB


def collectives(rank, calls):
    """In a spawned worker: median us per call of each size, and of a barrier."""
    import distbp.comm
    comm = distbp.comm.init("local")
    out = {}
    for n in SIZES + ["barrier"]:
        x = np.ones(1 if n == "barrier" else n, np.float32)
        fn = comm.barrier if n == "barrier" else (lambda: comm.allreduce(x))
        reps = []
        for _ in range(5):
            comm.barrier()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            reps.append((time.perf_counter() - t0) / calls * 1e6)
        out[str(n)] = float(min(reps))  # the least disturbed repetition (shared host)
    return out


def bookkeeping(tree, calls):
    """In a subprocess of `tree`: CPU microseconds (thread time, so preemption does not count) per
    call of what a rank does around a collective besides moving data, in that tree: recording the
    call, publishing it in the shared-memory header, comparing it with the peer's. Two transports
    of one segment (ranks 0 and 1, no bells) in one thread; per rank = total / 2."""
    import mmap
    from distbp.comm import base
    new = hasattr(base, "Call")
    if new:
        from distbp.comm import flight, segment, shm
        layout, Transport = segment.layout, shm.ShmTransport
    else:
        from distbp.comm import local
        layout, Transport = local.layout, local.ShmTransport
    buf = mmap.mmap(-1, layout(2, 4096, 2, 4096)[-1])
    ranks = [Transport(buf, r, 2, 4096, 2, 30.0, None, 4096) for r in (0, 1)]
    comms = [base.Communicator(r, 2) for r in (0, 1)]
    x = np.ones(8, np.float32)
    t0 = time.thread_time()
    for seq in range(1, calls + 1):
        for c, t in zip(comms, ranks):
            if new:   # base.Communicator._header and _run, without the data
                call = base.Call(seq, "allreduce", flight.dtype_name(x.dtype), x.size, 1, flight.current_tag() or "b 1")
                c.flight.begin(call)
                t.begin(call, x)
            else:
                t.begin("allreduce", seq, x)
        if new:
            for c, t in zip(comms, ranks):
                c.flight.end(call)
                t.end(call)
    return (time.thread_time() - t0) / calls / 2 * 1e6


def run_bookkeeping(tree, calls):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from benchmarks.bench_flight import bookkeeping; "
            "print(json.dumps(bookkeeping(sys.argv[1], int(sys.argv[2]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(tree), str(calls)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_collectives(tree, calls):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import distbp.comm; "
            "from benchmarks.bench_flight import collectives; "
            "print(json.dumps(distbp.comm.spawn(collectives, nprocs=2, args=(int(sys.argv[2]),))[0]))")
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
    proc = subprocess.run([sys.executable, "-c", code, str(tree), str(calls)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


OFF = Path(__file__).resolve().parent / "flight_off"


def run_train(tree, steps, extra_env=None, ablate=False):
    with tempfile.TemporaryDirectory() as out:
        path = f"{OFF}{os.pathsep}{tree}" if ablate else str(tree)
        env = {**os.environ, "PYTHONPATH": path, **(extra_env or {})}
        code = "import sys; sys.path.insert(0, sys.argv[1]); from distbp.cli import main; sys.exit(main(sys.argv[2:]))"
        subprocess.run([sys.executable, "-c", code, str(tree), "train", "--config",
                        "configs/mnist1d_cnn.yaml", "--set", f"train.steps={steps}",
                        "--set", "checkpoint.every_steps=0", "--out", out, "--force", "--quiet"],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        return json.loads(Path(out, "summary.json").read_text())["samples_per_second"]


def interleaved(rank, steps, block):
    """In a spawned worker: the CNN's train_step timed per step, the recorder off in odd blocks."""
    import importlib.util
    import distbp.comm
    from distbp.data import ensure_prepared
    from distbp.train.config import load_config
    from distbp.train.trainer import Trainer
    spec = importlib.util.spec_from_file_location("flight_off", OFF / "sitecustomize.py")
    off = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(off)
    cfg = load_config(ROOT / "configs" / "mnist1d_cnn.yaml",
                      [f"train.steps={steps}", "checkpoint.every_steps=0", "dist.workers=2",
                       "train.eval_every=0"])
    ensure_prepared(cfg["data"])
    times = {True: [], False: []}
    real = Trainer.train_step

    def train_step(self, step, batch):
        on = (step // block) % 2 == 0
        off.switch(on)
        t0 = time.perf_counter()
        out = real(self, step, batch)
        if step >= block:               # the first block warms up
            times[on].append(time.perf_counter() - t0)
        return out
    Trainer.train_step = train_step
    with tempfile.TemporaryDirectory() as out:
        Trainer(cfg, out, distbp.comm.init("local"), quiet=True).fit()
    return times


def run_interleaved(steps, block):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import distbp.comm; "
            "from benchmarks.bench_flight import interleaved; "
            "print(json.dumps(distbp.comm.spawn(interleaved, nprocs=2, "
            "args=(int(sys.argv[2]), int(sys.argv[3])))[0]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT), str(steps), str(block)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    on, off = np.array(times["true"]) * 1e3, np.array(times["false"]) * 1e3
    # block-paired ratios: each "on" block against the "off" block after it
    pairs = [np.median(on[i:i + block]) / np.median(off[i:i + block])
             for i in range(0, min(len(on), len(off)) - block + 1, block)]
    print(f"{'mode':<28} {'steps':>6} {'median ms':>10} {'mean ms':>8} {'p10':>6} {'p90':>6}")
    for name, t in (("recorder + check on", on), ("off (flight_off patch)", off)):
        print(f"{name:<28} {len(t):>6} {np.median(t):10.3f} {t.mean():8.3f} "
              f"{np.percentile(t, 10):6.2f} {np.percentile(t, 90):6.2f}")
    print(f"median step on/off: {np.median(on) / np.median(off):.4f}; block-paired ratios "
          f"(n={len(pairs)}): median {np.median(pairs):.4f}, quartiles "
          f"{np.percentile(pairs, 25):.4f}-{np.percentile(pairs, 75):.4f}")


def check_ablation():
    """The patch is in force in a fresh interpreter (and so in the forkserver and its workers)."""
    code = "import distbp.comm.flight as f; print(f.FlightRecorder.begin.__name__)"
    env = {**os.environ, "PYTHONPATH": f"{OFF}{os.pathsep}{ROOT}"}
    name = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()
    if name != "_record_off":
        raise SystemExit(f"--ablate: {OFF}/sitecustomize.py was not applied (begin is {name!r})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", help="a distbp tree without the flight recorder")
    p.add_argument("--ablate", action="store_true",
                   help="--train against this tree with the recorder and the check patched out")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=2000, help="calls per size and repetition")
    p.add_argument("--train", action="store_true", help="time the CNN training instead")
    p.add_argument("--bookkeeping", action="store_true",
                   help="CPU us per call of the per-collective bookkeeping only")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--interleave", action="store_true",
                   help="one CNN run switching the recorder off and on every --block steps")
    p.add_argument("--block", type=int, default=50)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="set in this tree's runs only (e.g. DISTBP_HEARTBEAT_TIMEOUT=0)")
    args = p.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.env)
    if args.interleave:
        return run_interleaved(args.steps, args.block)
    if args.ablate:
        if not args.train:
            p.error("--ablate times training: add --train")
        check_ablation()
    elif not args.baseline:
        p.error("--baseline DIR (a tree without the recorder) or --ablate")
    trees = {"baseline": ROOT if args.ablate else Path(args.baseline).resolve(), "this": ROOT}
    ratios = []
    for rnd in range(args.rounds):
        order = list(trees) if rnd % 2 == 0 else list(trees)[::-1]
        if args.bookkeeping:
            us = {name: run_bookkeeping(trees[name], 100000) for name in order}
            ratios.append(us["this"] - us["baseline"])
            print(f"round {rnd + 1}: CPU us per call and rank: baseline {us['baseline']:.2f}, "
                  f"this {us['this']:.2f}, added {us['this'] - us['baseline']:.2f}", flush=True)
            continue
        if args.train:
            sps = {name: run_train(trees[name], args.steps, env if name == "this" else None,
                                   ablate=args.ablate and name == "baseline") for name in order}
            ratio = sps["baseline"] / sps["this"]
            ratios.append(ratio)
            print(f"round {rnd + 1}: samples/s baseline {sps['baseline']:.0f}, this {sps['this']:.0f}, "
                  f"time ratio {ratio:.3f}", flush=True)
            continue
        us = {name: run_collectives(trees[name], args.calls) for name in order}
        print(f"round {rnd + 1}: {'size':>10} {'baseline us':>12} {'this us':>9} {'ratio':>6}")
        for key in us["this"]:
            label = "barrier" if key == "barrier" else f"{int(key) * 4} B"
            ratio = us["this"][key] / us["baseline"][key]
            ratios.append(ratio)
            print(f"{'':9}{label:>10} {us['baseline'][key]:12.1f} {us['this'][key]:9.1f} {ratio:6.3f}",
                  flush=True)
    what = "added CPU us per call" if args.bookkeeping else "ratio (this / baseline time)"
    print(f"median {what}: {np.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
