"""`distbp plan`: predict the step time and scaling efficiency of data-parallel training before
buying the cluster, from an alpha-beta model of the all-reduce calibrated on this machine.

    distbp plan --config configs/mnist1d_cnn.yaml                     # measure, then predict
    distbp plan --config configs/mnist1d_cnn.yaml --link 25gbit,10us --ranks-per-host 8 \\
        --hosts 1,8,32,128 --compression none,bf16,powersgd:4
    distbp plan --grad-mb 178 --step-ms 480 --link 25gbit,10us --ranks-per-host 4 --hosts 128

The model (weak scaling: every rank keeps its batch, so the compute per step stays T):
  ring all-reduce of S bytes over N ranks     2 (N-1) alpha + 2 (N-1)/N S beta
  hierarchical, H hosts of R ranks            reduce-scatter in the host over shared memory, an
      all-reduce of each 1/R shard across the hosts (all R local ranks drive the link at once, so
      the host's link carries 2 (H-1)/H S), all-gather in the host
  a flat ring across hosts                    every hop carries 2 (N-1)/N S, and the slowest hop
      (one per host boundary) sets the pace: the network's alpha and beta
  compression                                 bf16 / fp16 halve S; PowerSGD rank r sends
      r (n + m) per (n, m) gradient matrix (in two all-reduces: twice the latency), vectors as is
  step = T + max(0, C - overlap * T_backward), T_backward = 2/3 T, efficiency = T / step.
alpha and beta of shared memory come from a short all-reduce measured here (2 local ranks);
the network's from --link (rate and one-way latency) or a profile: dc = 10gbit,25us,
slow = 1gbit,100us. overlap (the share of backward the all-reduce can hide behind) defaults to
0.75, what distbp's traces measure for the shipped CNN (docs/scaling.md). Predictions beyond the
ranks measured here (2) are extrapolations of the formula, nothing more.
"""
import argparse
import math
import re
import time
from dataclasses import dataclass

import numpy as np

from distbp.errors import UsageError

PROFILES = {"dc": "10gbit,25us", "slow": "1gbit,100us", "25g": "25gbit,10us",
            "100g": "100gbit,5us"}
BACKWARD_SHARE = 2 / 3           # of a step's compute: backward is about twice the forward


@dataclass
class Link:
    """alpha: seconds per message (latency), beta: seconds per byte (1 / bandwidth)."""
    alpha: float
    beta: float

    @classmethod
    def parse(cls, text):
        """'25gbit,10us' (rate, one-way latency) or a profile name -> Link."""
        spec = PROFILES.get(text, text)
        m = re.fullmatch(r"\s*([\d.]+)\s*([gm])bit\s*,\s*([\d.]+)\s*(us|ms)\s*", spec, re.I)
        if not m:
            raise UsageError(f"--link {text!r}: give RATE,LATENCY like 25gbit,10us or a profile "
                             f"({', '.join(PROFILES)})")
        rate = float(m[1]) * (1e9 if m[2].lower() == "g" else 1e6) / 8        # bytes / s
        latency = float(m[3]) * (1e-6 if m[4] == "us" else 1e-3)
        return cls(alpha=latency, beta=1 / rate)


def ring_seconds(nbytes, n, link, messages=1):
    """Ring all-reduce of nbytes over n ranks on one link class (messages: all-reduces it takes)."""
    if n <= 1:
        return 0.0
    return messages * 2 * (n - 1) * link.alpha + 2 * (n - 1) / n * nbytes * link.beta


def hierarchical_seconds(nbytes, hosts, per_host, shm, net, messages=1):
    """Reduce-scatter in each host, all-reduce of each shard across hosts (R streams share the
    host's link), all-gather in the host."""
    inside = 2 * ((per_host - 1) * shm.alpha * messages
                  + (per_host - 1) / per_host * nbytes * shm.beta) if per_host > 1 else 0.0
    if hosts <= 1:
        return inside
    across = messages * 2 * (hosts - 1) * net.alpha + 2 * (hosts - 1) / hosts * nbytes * net.beta
    return inside + across


def allreduce_seconds(nbytes, hosts, per_host, shm, net, algorithm="ring", messages=1):
    n = hosts * per_host
    if hosts == 1:
        return ring_seconds(nbytes, n, shm, messages)
    if algorithm == "hierarchical":
        return hierarchical_seconds(nbytes, hosts, per_host, shm, net, messages)
    return ring_seconds(nbytes, n, net, messages)      # the host boundaries set the ring's pace


def sent_bytes(shapes, itemsize, compression="none"):
    """(bytes one rank all-reduces per step, all-reduces it takes) under a compression."""
    total = sum(int(np.prod(s)) for s in shapes) * itemsize
    if compression in ("none", None):
        return total, 1
    if compression in ("fp16", "bf16"):
        return total / 2, 1
    m = re.fullmatch(r"powersgd:(\d+)", compression)
    if not m:
        raise UsageError(f"--compression {compression!r}: none, fp16, bf16 or powersgd:RANK")
    rank, sent = int(m[1]), 0
    for s in shapes:
        rows, cols = (s[0], int(np.prod(s[1:]))) if len(s) > 1 else (1, int(np.prod(s)))
        low = rank * (rows + cols)
        sent += low if len(s) > 1 and low * 2 < rows * cols else rows * cols   # torch's rule
    return sent * itemsize, 2                                     # P and Q: two all-reduces


def hook_seconds(shapes, itemsize, n, link, compression="none", shard=False):
    """Communication seconds of one gradient bucket (its tensors' shapes) over n ranks as distbp's
    hooks send it (distbp/parallel/compression.py). Unlike sent_bytes, which gives torch's wire,
    bf16 here is distbp's bf16_compress_hook: a float32 reduce-scatter and a 16-bit all-gather, 3/4
    of the bytes. shard=True (a ZeroRedundancyOptimizer reads only its shard): none and fp16 are a
    reduce-scatter, half a ring all-reduce; bf16 is its float32 reduce-scatter; PowerSGD still
    all-reduces P and Q. The hooks' compute is not in here (measure it: auto_compression.py)."""
    if compression == "bf16":
        full, _ = sent_bytes(shapes, itemsize)
        return ring_seconds(full, n, link) / 2 if shard else ring_seconds(full * 3 / 4, n, link)
    if compression == "fp16":           # 2 bytes an element on the wire, float32 or float64 grads
        nbytes, messages = sent_bytes(shapes, 2)
    else:
        nbytes, messages = sent_bytes(shapes, itemsize, compression)
    if shard and messages == 1:
        return ring_seconds(nbytes, n, link) / 2
    return ring_seconds(nbytes, n, link, messages)


def predict(shapes, itemsize, step_seconds, hosts, per_host, shm, net, overlap=0.75,
            algorithm="ring", compression="none"):
    """-> dict(ranks, comm, exposed, step, efficiency) for weak scaling."""
    nbytes, messages = sent_bytes(shapes, itemsize, compression)
    comm = allreduce_seconds(nbytes, hosts, per_host, shm, net, algorithm, messages)
    exposed = max(0.0, comm - overlap * BACKWARD_SHARE * step_seconds)
    step = step_seconds + exposed
    return {"ranks": hosts * per_host, "comm": comm, "exposed": exposed, "step": step,
            "efficiency": step_seconds / step}


# -- calibration on this machine --------------------------------------------------------------

def _allreduce_times(rank, sizes, reps):
    import distbp.comm as C
    comm = C.init("local")
    out = {}
    for n in sizes:
        x = np.ones(n // 4, np.float32)
        comm.allreduce(x)
        t = []
        for _ in range(reps):
            comm.barrier()
            t0 = time.perf_counter()
            comm.allreduce(x)
            t.append(time.perf_counter() - t0)
        out[n] = float(np.min(t))      # the floor: on a shared host the median holds preemptions
    return out


def calibrate_shm(sizes=(4096, 1 << 22), reps=20):
    """alpha, beta of the shared-memory ring from 2 local ranks: two sizes, two unknowns."""
    from distbp.comm import spawn
    times = spawn(_allreduce_times, args=(list(sizes), reps), nprocs=2, timeout=60)[0]
    return fit_ring(times, 2), times


def fit_ring(times, n):
    """Link (alpha, beta) of a ring all-reduce over n ranks through two measured points
    {bytes: seconds}: t = 2 (n-1) alpha + 2 (n-1)/n S beta, two sizes, two unknowns."""
    (s0, t0), (s1, t1) = sorted(times.items())
    hops, share = 2 * (n - 1), 2 * (n - 1) / n
    # if load made the large call no slower than the small one, the latency is unmeasurable and
    # the large call's time is bandwidth
    beta = (t1 - t0) / (s1 - s0) / share if t1 > t0 else 0.0
    alpha = max((t0 - share * s0 * beta) / hops, 1e-7) if beta else 1e-7
    beta = beta or (t1 - hops * alpha) / (share * s1)
    return Link(alpha, beta)


def measure_step(cfg, reps=5):
    """(gradient shapes, itemsize, seconds of forward + backward + step) of one worker on the
    config's global batch, built as `distbp train` builds it."""
    import distbp
    from distbp.data import ensure_prepared
    from distbp.train.build import build_parts
    from distbp.train.optim import build_optimizer
    ensure_prepared(cfg["data"])                  # a built-in data set is made as distbp train does
    parts = build_parts(cfg, cfg["train"]["dtype"])
    model, opt = parts.model, build_optimizer(cfg["optim"], parts.model)
    batch = min(cfg["train"]["global_batch_size"], len(parts.train_set))
    x, y = parts.train_set.take(np.arange(batch))
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        out = model(distbp.from_numpy(x))
        parts.loss(*parts.task.align(out, y)).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    shapes = [tuple(p.shape) for p in model.parameters()]
    return shapes, np.dtype(cfg["train"]["dtype"]).itemsize, float(np.median(times[1:]))


# -- the command --------------------------------------------------------------------------------

def _ints(text, flag):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give comma-separated numbers, e.g. 1,8,64") from None
    if any(v < 1 for v in values):
        raise UsageError(f"{flag} {text!r}: every value must be >= 1")
    return values


def main(argv):
    p = argparse.ArgumentParser(prog="distbp plan", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="a training config: its model is built and timed here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--grad-mb", type=float, help="instead of --config: gradient size in MB")
    p.add_argument("--step-ms", type=float, help="instead of --config: one worker's step in ms")
    p.add_argument("--hosts", default="1,2,8,32,128", help="host counts to predict")
    p.add_argument("--ranks-per-host", type=int, default=1)
    p.add_argument("--link", default="dc", help=f"RATE,LATENCY or {', '.join(PROFILES)}")
    p.add_argument("--shm", default=None, help="shared memory as RATE,LATENCY (default: measure)")
    p.add_argument("--overlap", type=float, default=0.75,
                   help="share of backward the all-reduce hides behind (0..1)")
    p.add_argument("--algorithm", default="ring,hierarchical")
    p.add_argument("--compression", default="none,bf16,powersgd:4")
    args = p.parse_args(argv)
    if not 0 <= args.overlap <= 1:
        raise UsageError(f"--overlap {args.overlap}: give a share between 0 and 1")
    hosts, net = _ints(args.hosts, "--hosts"), Link.parse(args.link)
    if args.ranks_per_host < 1:
        raise UsageError(f"--ranks-per-host {args.ranks_per_host}: must be >= 1")
    if args.config:
        from distbp.train.config import load_config
        cfg = load_config(args.config, args.set)
        shapes, itemsize, step = measure_step(cfg)
        what = f"{args.config}: {sum(map(math.prod, shapes)) * itemsize / 1e6:.2f} MB of gradients"
    elif args.grad_mb and args.step_ms:
        shapes, itemsize, step = [(int(args.grad_mb * 1e6 / 4),)], 4, args.step_ms / 1e3
        what = f"{args.grad_mb:g} MB of gradients (one vector: PowerSGD sees no matrices)"
    else:
        raise UsageError("give --config, or both --grad-mb and --step-ms")
    if args.shm:
        shm = Link.parse(args.shm)
    else:
        shm, _ = calibrate_shm()
    print(f"{what}; one worker's step {step * 1e3:.1f} ms; shared memory alpha "
          f"{shm.alpha * 1e6:.1f} us, {1 / shm.beta / 1e9:.2f} GB/s; link alpha "
          f"{net.alpha * 1e6:.0f} us, {1 / net.beta / 1e9:.3f} GB/s; overlap {args.overlap:g}")
    print("| hosts x ranks | algorithm | compression | all-reduce ms | exposed ms | step ms | "
          "efficiency |")
    print("|---|---|---|---:|---:|---:|---:|")
    for h in hosts:
        for algo in args.algorithm.split(","):
            if h == 1 and algo != "ring":
                continue
            for comp in args.compression.split(","):
                r = predict(shapes, itemsize, step, h, args.ranks_per_host, shm, net,
                            args.overlap, algo, comp)
                print(f"| {h} x {args.ranks_per_host} | {algo if h > 1 else 'shm ring'} | {comp} | "
                      f"{r['comm'] * 1e3:.2f} | {r['exposed'] * 1e3:.2f} | {r['step'] * 1e3:.1f} | "
                      f"{r['efficiency']:.0%} |")
    return 0
