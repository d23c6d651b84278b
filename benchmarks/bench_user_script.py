"""A user script on the public API vs `distbp train`: the shipped CNN, 2 workers, samples/s.

    python benchmarks/bench_user_script.py                       # 4 interleaved rounds of 300 steps
    python benchmarks/bench_user_script.py --rounds 6 --steps 500

Peer A: `distbp train --config configs/mnist1d_cnn.yaml --workers 2` (its summary's samples/s).
Peer B: this file run as a user script, `distbp run --nproc-per-node 2 THIS --user-script`:
configs/mnist1d_cnn.yaml's model built by distbp.models, the prepared MNIST-1D rows in a
TensorDataset, DistributedSampler + DataLoader (64 rows per rank), DistributedDataParallel(model)
with a mean loss, and ZeroRedundancyOptimizer(params, AdamW) as distbp train's default
dist.shard_optimizer=true does (--optimizer adamw: a plain AdamW). Both time rank 0's steps the
same way (data + step, after 5 warm-up steps, 128 samples per step), without augmentation,
evaluation, checkpoints or per-step logging; rounds alternate which peer goes first. Prints one row per round, then the medians.
"""
import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist1d_cnn.yaml"
WARMUP = 5          # as distbp.train.trainer.WARMUP_STEPS
GLOBAL_BATCH = 128


def user_script(steps, out, optimizer):
    import numpy as np

    import distbp
    import distbp.distributed as dist
    import distbp.nn.functional as F
    from distbp.data import ParquetDataset
    from distbp.distributed.optim import ZeroRedundancyOptimizer
    from distbp.models import build_model
    from distbp.nn.parallel import DistributedDataParallel as DDP
    from distbp.train.config import load_config
    from distbp.utils.data import DataLoader, TensorDataset
    from distbp.utils.data.distributed import DistributedSampler

    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = load_config(CONFIG)                       # the YAML with distbp train's defaults
    rows = ParquetDataset("data/mnist1d", "train")
    train_set = TensorDataset(*rows.take(np.arange(len(rows))))
    sampler = DistributedSampler(train_set, seed=0)
    loader = DataLoader(train_set, batch_size=GLOBAL_BATCH // world, sampler=sampler,
                        drop_last=True)
    distbp.manual_seed(0)
    model = DDP(build_model(cfg["model"], rows.describe()))
    hyper = {"lr": cfg["optim"]["lr"], "weight_decay": cfg["optim"]["weight_decay"]}
    if optimizer == "zero":                         # what distbp train does (dist.shard_optimizer)
        opt = ZeroRedundancyOptimizer(model.parameters(), distbp.optim.AdamW, **hyper)
    else:
        opt = distbp.optim.AdamW(model.parameters(), **hyper)
    step, epoch, timed = 0, 0, 0.0
    while step < steps:
        sampler.set_epoch(epoch)
        batches = iter(loader)
        while step < steps:
            t0 = time.perf_counter()
            try:
                x, y = next(batches)
            except StopIteration:
                break
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            step += 1
            if step > WARMUP:
                timed += time.perf_counter() - t0
        epoch += 1
    if rank == 0:
        Path(out).write_text(json.dumps({"samples_per_second": (steps - WARMUP) * GLOBAL_BATCH
                                         / timed, "final_loss": loss.item()}))
    dist.destroy_process_group()


def run(cmd, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-3000:]}")


def distbp_train(work, steps, i):
    out = work / f"train{i}"
    run([sys.executable, "-m", "distbp.cli", "train", "--config", CONFIG, "--workers", "2",
         "--out", out, "--quiet", "--set", f"train.steps={steps}", "--set",
         f"train.log_every={steps}", "--set", "train.eval_every=0", "--set",
         "checkpoint.every_steps=0", "--set", "data.augment=[]"], work)
    return json.loads((out / "summary.json").read_text())["samples_per_second"]


def script(work, steps, i, optimizer="zero"):
    out = work / f"script{i}.json"
    run([sys.executable, "-m", "distbp.cli", "run", "--nproc-per-node", "2", __file__,
         "--user-script", "--steps", str(steps), "--out", out, "--optimizer", optimizer], work)
    return json.loads(out.read_text())["samples_per_second"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--user-script", action="store_true", help="(internal) be peer B")
    p.add_argument("--out", default=None)
    p.add_argument("--optimizer", choices=("zero", "adamw"), default="zero",
                   help="the user script's: ZeroRedundancyOptimizer over AdamW (as distbp train "
                        "with dist.shard_optimizer, its default) or a plain AdamW")
    args = p.parse_args()
    if args.user_script:
        return user_script(args.steps, args.out, args.optimizer)
    with tempfile.TemporaryDirectory(prefix="bench_user_") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        run([sys.executable, "-m", "distbp.cli", "data", "prepare", "mnist1d", "--out",
             "data/mnist1d"], work)
        peers = {"distbp train": distbp_train,
                 "user script": functools.partial(script, optimizer=args.optimizer)}
        rows = []
        print(f"{'round':>5} {'distbp train':>13} {'user script':>12} {'ratio':>6}", flush=True)
        for i in range(args.rounds):
            order = list(peers) if i % 2 == 0 else list(peers)[::-1]
            got = {name: peers[name](work, args.steps, i) for name in order}
            rows.append(got)
            print(f"{i:>5} {got['distbp train']:>13.0f} {got['user script']:>12.0f} "
                  f"{got['user script'] / got['distbp train']:>6.3f}", flush=True)
        ratios = [r["user script"] / r["distbp train"] for r in rows]
        med = {k: statistics.median(r[k] for r in rows) for k in peers}
        print(f"{'median':>5} {med['distbp train']:>13.0f} {med['user script']:>12.0f} "
              f"{statistics.median(ratios):>6.3f}   (ratio range {min(ratios):.3f}-"
              f"{max(ratios):.3f}, samples/s, {args.steps} steps, 2 workers, user script's "
              f"optimizer: {args.optimizer})")


if __name__ == "__main__":
    main()
