"""Across hosts: distbp's all-reduce and training on 2 emulated hosts (network namespaces whose
links launch/netns_hosts.sh shapes), next to MPICH's MPI_Allreduce on the same link, with the cost
model's prediction (distbp/plan.py) checked against every measured step. Needs root and mpiexec.

    python benchmarks/bench_multihost.py                                  # profiles slow and dc
    python benchmarks/bench_multihost.py --profiles slow --steps 80 --out benchmarks/results/multihost.md

Hosts: three namespaces; host 0 runs mpiexec (as a login node would), hosts 1 and 2 run the ranks,
1 or 2 per host. MPI's messages between hosts are kept on TCP over the veth (`netns_hosts.sh env`),
so every byte between hosts crosses the shaped link: the tables count them on host 1's eth0.

All-reduce table: `distbp bench allreduce --peers mpi` across the 2 hosts (distbp and MPICH's
MPI_Allreduce in the same job), bus bandwidth = bytes * 2(N-1)/N / time. With 2 ranks per host
distbp runs both its flat ring and its hierarchical all-reduce (DISTBP_HIERARCHICAL=0 / 1).

Training table: `distbp train --backend mpi` of a 1-D CNN widened to --channels (several MB of
gradients), weak scaling (every rank keeps --batch samples per step), shard_optimizer off (the DDP
all-reduce the model describes), --bucket-mb buckets. Per rank count N it runs the same N ranks
on one host (host 1: shared memory, no link) and across the 2 hosts; step time from metrics.jsonl
between the first log point and the last step. Two efficiencies: against 1 worker (what a user
gains: with 2 ranks per host it also pays for 4 ranks sharing these 2 cores) and against the same
N ranks on one host (what the link costs). "waiting" = exposed communication per step (time in
the gradient wait after backward, from summary.json) / step time.

Prediction: distbp.plan.predict with the compute T = the N ranks' one-host step (it holds the cores'
sharing and the in-host costs; the model adds what crosses the link), the network's alpha and beta
fitted to this run's 1-rank-per-host all-reduce times (least squares of t = 2 alpha + S beta over
the sizes), shared memory calibrated by plan.calibrate_shm, overlap 0.75 (plan's default).
"error" = predicted / measured - 1; the issue's bar is within 15%.

Every wait has a timeout; the namespaces are removed at the end, also on failure or Ctrl-C.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import find_mpiexec, one_thread_env, prepare_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "launch" / "netns_hosts.sh"
NET = "10.219.0"                                   # hosts 0..2 at .1-.3; tests use other nets
TIMEOUT = 900


def sh(env, *args, timeout=180):
    res = subprocess.run(["sh", str(SCRIPT), *map(str, args)], env=env, capture_output=True,
                         text=True, timeout=timeout)
    if res.returncode:
        raise RuntimeError(f"netns_hosts.sh {' '.join(map(str, args))}: {res.stderr.strip()[-800:]}")
    return res.stdout


def tx_bytes(env, k):
    ns = f"{env['DISTBP_NETNS_PREFIX']}_h{k}"
    return int(subprocess.run(["ip", "netns", "exec", ns, "cat",
                               "/sys/class/net/eth0/statistics/tx_bytes"],
                              capture_output=True, text=True, check=True).stdout)


def mpiexec_on(env, per_host, hosts, cmd, extra_env=(), work=None):
    """mpiexec in host 0 with `per_host` ranks on each of namespace hosts `hosts` (1-based) ->
    (stdout, bytes out of host 1's eth0)."""
    hostfile = work / f"hosts-{per_host}-{'-'.join(map(str, hosts))}.txt"
    hostfile.write_text("".join(f"{NET}.{k + 1}:{per_host}\n" for k in hosts))
    full = one_thread_env({**env, **dict(extra_env)})
    full.update(line.split("=", 1) for line in sh(env, "env").split()[1:])   # UCX_TLS=tcp ...
    n = per_host * len(hosts)
    before = tx_bytes(env, 1)
    res = subprocess.run(["sh", str(SCRIPT), "run", "0", find_mpiexec(), "-launcher", "ssh",
                          "-launcher-exec", str(SCRIPT), "-iface", "eth0", "-localhost", f"{NET}.1",
                          "-genvall", "-f", str(hostfile), "-n", str(n), *map(str, cmd)],
                         env=full, capture_output=True, text=True, timeout=TIMEOUT, cwd=work)
    if res.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd[:6]))} on {n} ranks failed:\n{res.stderr[-2000:]}")
    return res.stdout, tx_bytes(env, 1) - before


# ------------------------------------------------------------------------------ all-reduce

def allreduce(env, per_host, sizes, hierarchical, work, iters):
    """distbp's and MPICH's all-reduce in one job, interleaved by size -> bench's JSON."""
    out, _ = mpiexec_on(env, per_host, (1, 2),
                        [sys.executable, "-m", "distbp.cli", "bench", "allreduce", "--sizes",
                         sizes, "--peers", "mpi", "--json", "--iters", str(iters)],
                        {"DISTBP_HIERARCHICAL": "1" if hierarchical else "0"}, work)
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def bytes_across(env, per_host, hierarchical, work, library, nbytes=4_000_000, iters=10):
    """Bytes out of host 1's eth0 per all-reduce of `nbytes` per rank, one library alone."""
    flag = "--no-peers" if library == "distbp" else "--only-mpi"
    _, sent = mpiexec_on(env, per_host, (1, 2),
                         [sys.executable, "-m", "distbp.cli", "bench", "allreduce", "--sizes",
                          str(nbytes), flag, "--json", "--iters", str(iters)],
                         {"DISTBP_HIERARCHICAL": "1" if hierarchical else "0"}, work)
    return sent / ((iters + 3) * nbytes)                # 3 warm-up calls; barriers are tiny


def fit_link(sizes, times):
    """alpha, beta of t = 2 alpha + S beta (a ring of 2) by least squares over the sizes."""
    from distbp.plan import Link
    beta, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(times, float), 1)
    return Link(alpha=max(intercept / 2, 1e-6), beta=beta)


# ------------------------------------------------------------------------------ training

def config(work, channels, batch, n, steps, bucket_mb, compression="none"):
    cfg = {"model": {"name": "cnn1d", "channels": channels},
           "data": {"name": "mnist1d", "path": str(work / "data" / "mnist1d")},
           "train": {"steps": steps, "global_batch_size": batch * n, "seed": 0, "threads": 1,
                     "log_every": max(steps // 10, 1),
                     "eval_every": steps if compression != "none" else 0},
           "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0001},
           "dist": {"workers": n, "bucket_mb": bucket_mb, "shard_optimizer": False,
                    "compression": compression},
           "checkpoint": {"every_steps": 0}}
    path = work / f"cnn-{n}-{compression.replace(':', '')}.yaml"
    path.write_text(json.dumps(cfg))                  # JSON is YAML
    return path


def step_seconds(out, warmup=6):
    """Seconds per step between the first log point past `warmup` steps and the last one, from
    metrics.jsonl's elapsed training time (start-up and the first, slow steps left out)."""
    train = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["kind"] == "train" and r["step"] >= warmup]
    first, last = train[0], train[-1]
    return (last["elapsed"] - first["elapsed"]) / (last["step"] - first["step"])


def train(env, per_host, hosts, cfg_path, batch, n, steps, work, label):
    out = work / "runs" / label
    _, sent = mpiexec_on(env, per_host, hosts,
                         [sys.executable, "-m", "distbp.cli", "train", "--config", cfg_path,
                          "--backend", "mpi", "--out", out, "--force", "--quiet"], work=work)
    summary = json.loads((out / "summary.json").read_text())
    step = step_seconds(out)
    with np.load(out / "model.npz") as z:
        shapes = [z[k].shape for k in z.files]
    auto = (summary.get("compression") or {}).get("auto") or {}
    return {"step": step, "exposed": summary["exposed_comm_seconds"] / steps,
            "loss": summary["final_loss"], "accuracy": summary.get("test_accuracy"),
            "choices": [b["choice"] for b in auto.get("buckets", [])],
            "sent_per_step": sent / steps, "shapes": shapes}


# ------------------------------------------------------------------------------ the tables

def median_row(rows, key):
    return statistics.median(r[key] for r in rows)


def run_profile(env, profile, args, work, shm):
    from distbp.plan import predict
    sh(env, "shape", 3, profile)
    link = json.loads(sh(env, "measure", 1, 2).strip().splitlines()[-1])
    sizes = [int(float(s[:-1]) * {"K": 1e3, "M": 1e6}[s[-1]]) for s in args.sizes.split(",")]
    ar = {}
    for per_host in args.ranks_per_host:
        mpi_sent = bytes_across(env, per_host, False, work, "mpi")
        for hier in ((False, True) if per_host > 1 else (False,)):
            res = allreduce(env, per_host, args.sizes, hier, work, args.iters)
            ar[per_host, hier] = {**res, "sent": bytes_across(env, per_host, hier, work, "distbp"),
                                  "sent_mpi": mpi_sent}
    net = fit_link(sizes, ar[1, False]["distbp"])

    lines = [f"### profile {profile}: measured {link['rate_gbit']:.2f} Gbit/s, round trip "
             f"{link['rtt_us_median']:.0f} us (median of 1-byte ping-pongs); fitted to distbp's "
             f"2-rank all-reduce: alpha {net.alpha * 1e6:.0f} us, {8 / net.beta / 1e9:.2f} Gbit/s",
             "", "| hosts x ranks | distbp algorithm | size | distbp ms | distbp busbw GB/s | "
             "MPICH ms | MPICH busbw GB/s | MPICH / distbp time |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (per_host, hier), r in ar.items():
        n = r["n"]
        for i, s in enumerate(sizes):
            t, tm = r["distbp"][i], (r.get("mpi") or [None] * len(sizes))[i]
            bus = s * 2 * (n - 1) / n
            lines.append(f"| 2 x {per_host} | {'hierarchical' if hier else 'ring'} | {s / 1e6:g} MB "
                         f"| {t * 1e3:.2f} | {bus / t / 1e9:.3f} | "
                         + (f"{tm * 1e3:.2f} | {bus / tm / 1e9:.3f} | {tm / t:.2f} |" if tm
                            else "- | - | - |"))
    lines += ["", "Bytes out of host 1's eth0 per all-reduce, in units of the buffer (4 MB per rank): "
              + "; ".join(f"2 x {ph} distbp {'hierarchical' if h else 'ring'} {r['sent']:.2f}, "
                          f"MPICH {r['sent_mpi']:.2f}" for (ph, h), r in ar.items()), ""]

    rows = []
    for per_host in args.ranks_per_host:
        n = 2 * per_host
        cfg = config(work, args.channels, args.batch, n, args.steps, args.bucket_mb)
        reps = {"one": [], "across": []}
        for r in range(args.reps):                       # interleaved: slow spells hit both alike
            reps["one"].append(train(env, n, (1,), cfg, args.batch, n, args.steps, work,
                                     f"{profile}-{n}-one-{r}"))
            reps["across"].append(train(env, per_host, (1, 2), cfg, args.batch, n, args.steps, work,
                                        f"{profile}-{n}-across-{r}"))
        one, across = median_row(reps["one"], "step"), median_row(reps["across"], "step")
        spread = max(x["step"] for x in reps["across"]) / min(x["step"] for x in reps["across"]) - 1
        shapes = reps["across"][0]["shapes"]
        algo = "hierarchical" if per_host > 1 else "ring"
        pred = predict(shapes, 4, one, 2, per_host, shm, net, args.overlap, algo)
        rows.append({"n": n, "per_host": per_host, "one": one, "across": across, "spread": spread,
                     "waiting": median_row(reps["across"], "exposed") / across,
                     "sent": median_row(reps["across"], "sent_per_step"), "pred": pred["step"],
                     "algo": algo, "grad_mb": sum(int(np.prod(s)) for s in shapes) * 4 / 1e6})
    return lines, rows, link, net


def training_table(rows_by_profile, single):
    lines = ["| profile | hosts x ranks | all-reduce | step, N ranks on 1 host ms | step across "
             "2 hosts ms (spread) | vs 1 worker | vs 1 host | waiting | MB out of host 1 per step "
             "| predicted ms | error |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for profile, rows in rows_by_profile.items():
        for r in rows:
            lines.append(f"| {profile} | 2 x {r['per_host']} | {r['algo']} | {r['one'] * 1e3:.1f} | "
                         f"{r['across'] * 1e3:.1f} ({r['spread']:.0%}) | {single / r['across']:.0%} | "
                         f"{r['one'] / r['across']:.0%} | {r['waiting']:.0%} | {r['sent'] / 1e6:.2f} | "
                         f"{r['pred'] * 1e3:.1f} | {r['pred'] / r['across'] - 1:+.0%} |")
    return lines


def compression_rows(env, profile, args, work):
    """2 x 1 across the hosts, each dist.compression value: step time, loss and test accuracy
    after the same steps, and what auto chose per bucket."""
    sh(env, "shape", 3, profile)
    runs = {c: [] for c in args.compression.split(",")}
    for r in range(args.reps):                               # interleaved, as above
        for comp in runs:
            cfg = config(work, args.channels, args.batch, 2, args.compression_steps, args.bucket_mb,
                         comp)
            runs[comp].append(train(env, 1, (1, 2), cfg, args.batch, 2, args.compression_steps,
                                    work, f"{profile}-comp-{comp.replace(':', '')}-{r}"))
    lines = []
    base = median_row(runs.get("none") or next(iter(runs.values())), "step")
    for comp, rs in runs.items():
        step, acc = median_row(rs, "step"), rs[0]["accuracy"]
        chose = ", ".join(sorted(set(rs[0]["choices"]))) if comp == "auto" else ""
        lines.append(f"| {profile} | {comp} | {step * 1e3:.1f} | {1 / step:.1f} | {base / step:.2f} | "
                     f"{rs[0]['loss']:.4f} | {'-' if acc is None else f'{acc:.1%}'} | {chose} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profiles", default="slow,dc", help="netns_hosts.sh profiles (dc, slow, none, RATE)")
    p.add_argument("--ranks-per-host", default="1,2")
    p.add_argument("--sizes", default="64K,1M,4M,16M", help="all-reduce sizes (K or M)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--channels", default="128,256,512")
    p.add_argument("--batch", type=int, default=64, help="samples per rank per step")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--bucket-mb", type=float, default=1.0)
    p.add_argument("--overlap", type=float, default=0.75)
    p.add_argument("--compression", default="",
                   help="also train 2 x 1 with each dist.compression value, e.g. none,bf16,powersgd:1,auto")
    p.add_argument("--compression-steps", type=int, default=200)
    p.add_argument("--out", help="also write the tables to this Markdown file")
    args = p.parse_args()
    args.ranks_per_host = [int(v) for v in args.ranks_per_host.split(",")]
    args.channels = [int(v) for v in args.channels.split(",")]
    if os.geteuid() != 0 or find_mpiexec() is None:
        sys.exit("bench_multihost.py: needs root (network namespaces) and mpiexec (pip install mpich)")
    from distbp.plan import calibrate_shm

    work = ROOT / ".bench-multihost"
    (work / "runs").mkdir(parents=True, exist_ok=True)
    prepare_data(work)
    env = dict(os.environ, DISTBP_NETNS_PREFIX=f"dbm{uuid.uuid4().hex[:6]}", DISTBP_NETNS_NET=NET,
               DISTBP_NETNS_PROBE_MB="32", PYTHONPATH=str(ROOT))
    shm, _ = calibrate_shm()
    sh(env, "up", 3)
    try:
        single_cfg = config(work, args.channels, args.batch, 1, args.steps, args.bucket_mb)
        single = statistics.median(train(env, 1, (1,), single_cfg, args.batch, 1, args.steps, work,
                                         f"single-{r}")["step"] for r in range(args.reps))
        blocks, rows = [], {}
        for profile in args.profiles.split(","):
            lines, rows[profile], _, _ = run_profile(env, profile, args, work, shm)
            blocks += lines + [""]
            print("\n".join(lines), flush=True)
        comp = []
        for profile in args.profiles.split(",") if args.compression else ():
            comp += compression_rows(env, profile, args, work)
    finally:
        subprocess.run(["sh", str(SCRIPT), "down", "3"], env=env, capture_output=True, timeout=120)
    grad_mb = next(iter(rows.values()))[0]["grad_mb"]
    head = [f"# bench_multihost.py, {datetime.date.today()}, {platform.node()} "
            f"({os.cpu_count()} cores; every host and link on them), Python {platform.python_version()}, "
            f"numpy {np.__version__}",
            "", f"`python benchmarks/bench_multihost.py {' '.join(sys.argv[1:])}`".replace("  ", " "),
            "", f"Model: cnn1d channels {args.channels}, {grad_mb:.2f} MB of float32 gradients, "
            f"{args.batch} samples per rank per step, bucket {args.bucket_mb:g} MB, shard_optimizer "
            f"off; {args.steps} steps, median of {args.reps} interleaved runs; 1 worker alone: "
            f"{single * 1e3:.1f} ms per step. Shared memory (plan.calibrate_shm): alpha "
            f"{shm.alpha * 1e6:.1f} us, {1 / shm.beta / 1e9:.2f} GB/s.", ""]
    text = "\n".join(head + blocks + ["### training", ""] + training_table(rows, single)) + "\n"
    if args.compression:
        text += "\n".join(["", f"### dist.compression, 2 x 1, {args.compression_steps} steps "
                            "(loss and test accuracy of the first repetition; the same seed)", "",
                            "| profile | dist.compression | step ms | steps/s | speed-up | final loss | "
                            "test accuracy | auto chose |", "|---|---|---:|---:|---:|---:|---:|---|"]
                           + comp) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
