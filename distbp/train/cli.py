"""`distbp train`: resolve the config, check the inputs, then run the workers.

    distbp train --config configs/mnist1d_cnn.yaml                       # 2 local processes
    distbp train --config configs/mnist1d_cnn.yaml --workers 4 --set train.steps=300
    mpiexec -n 4 distbp train --config configs/mnist1d_cnn.yaml --backend mpi
    distbp train --config configs/mnist1d_cnn.yaml --backend ray

Every check that can fail on bad input runs here, in one process, before any worker starts and
before anything is written, so bad input costs one line and leaves the disk as it was. That holds
by construction: preflight() builds the data sets, augmentation, model and loss with the very
function every worker's Trainer builds them with (train/build.py), then the optimizer and the
schedule; the run directory is made only after it returned.
"""
import argparse
import json
import os
import shutil
import threading
import time
import traceback
from pathlib import Path

from distbp.errors import UsageError
from distbp.train.config import dump_config, load_config

RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "model.npz", "checkpoints",
             "model.safetensors", "tensorboard")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    p = _Parser(prog="distbp train", description="Train a model data-parallel from a YAML config.")
    p.add_argument("--config", required=True, help="YAML experiment file (see configs/)")
    p.add_argument("--backend", choices=["local", "mpi", "ray", "single"],
                   help="local processes (default), mpi ranks, ray actors, or one process")
    p.add_argument("--workers", type=int, help="number of workers (local/ray); checked under mpi")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=30 (repeatable)")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--force", action="store_true", help="replace a finished run in --out")
    p.add_argument("--trace", action="store_true", help="write a Chrome/Perfetto trace.json")
    p.add_argument("--address", help="ray: address of an existing cluster (else RAY_ADDRESS)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--max-restarts", type=int, default=0, metavar="K",
                   help="when a worker fails, restart from the newest checkpoint up to K times "
                        "(local and ray; under mpiexec see launch/mpirun_supervised.sh)")
    p.add_argument("--min-workers", type=int, metavar="M",
                   help="with --max-restarts: a restart may run on fewer workers, down to M, when "
                        "workers cannot be had (local: a start that fails before its first step; "
                        "ray: sets dist.min_workers, an elastic run)")
    return p.parse_args(argv)


def resolve(args):
    sets = list(args.set)
    if not args.backend:
        from distbp.comm.world import mpi_world_size
        if mpi_world_size() > 1:          # started by mpirun/mpiexec: the world comes from MPI
            args.backend = "mpi"
    if args.backend:
        sets.append(f"dist.backend={args.backend}")
    if args.max_restarts < 0:
        raise UsageError(f"--max-restarts must be >= 0, got {args.max_restarts}")
    if args.min_workers is not None and args.min_workers < 1:
        raise UsageError(f"--min-workers must be >= 1, got {args.min_workers}")
    if args.workers is not None:
        if args.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {args.workers}")
        sets.append(f"dist.workers={args.workers}")
    cfg = load_config(args.config, sets)
    out = Path(args.out or Path("runs") / Path(args.config).stem)
    return cfg, out


def check_out_dir(out, resume, force):
    """Refuse to overwrite a run unless --resume or --force; never touch anything on bad input."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    existing = [f for f in RUN_FILES if (out / f).exists()]
    if resume:
        if not (out / "checkpoints").is_dir():
            raise UsageError(f"--resume: {out} holds no checkpoints/ to resume from")
        return
    if existing and not force:
        raise UsageError(f"--out {out} already holds a run ({', '.join(existing)}); "
                         "pass --resume to continue it or --force to replace it")


def clear_run(out):
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for name in ("trace", "trace.json"):
        path = out / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


# backend -> (module it needs, the extra that installs it)
BACKEND_EXTRAS = {"mpi": ("mpi4py", "mpi"), "ray": ("ray", "ray")}


def require_extra(backend):
    """One line naming the pip install when the backend's optional dependency is missing."""
    if backend not in BACKEND_EXTRAS:
        return
    module, extra = BACKEND_EXTRAS[backend]
    try:
        __import__(module)
    except ImportError:
        raise UsageError(f"--backend {backend} needs {module}, which is not installed: "
                         f'pip install "distbp[{extra}]"') from None


def preflight(cfg):
    """Build, once and in this process, everything that depends only on the config and the data,
    exactly as the workers will (a missing built-in data set is prepared first); then the optimizer
    and the learning-rate schedule. Also checks the environment's comm settings."""
    from distbp.comm.local import spin_ms
    from distbp.data import ensure_prepared
    from distbp.train.build import build_parts
    from distbp.train.optim import build_optimizer, build_scheduler
    spin_ms()
    require_extra(cfg["dist"]["backend"])
    ensure_prepared(cfg["data"])
    parts = build_parts(cfg, cfg["train"]["dtype"])
    try:
        optimizer = build_optimizer(cfg["optim"], parts.model)
        build_scheduler(cfg["optim"], optimizer, parts.steps)
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"optim.name={cfg['optim']['name']!r} could not be built from the optim "
                         f"keys: {e}") from None
    if cfg["dist"]["backend"] == "ray":          # what the parameter server refuses
        from distbp.ray.launch import check_config
        check_config(cfg)
    return parts


def main(argv):
    args = parse_args(argv)
    cfg, out = resolve(args)
    backend = cfg["dist"]["backend"]
    require_extra(backend)
    if args.max_restarts and backend == "mpi":
        raise UsageError("--max-restarts: MPI cannot replace a dead rank inside a job; run "
                         "launch/mpirun_supervised.sh K mpiexec ... (it relaunches with --resume)")
    if args.max_restarts and backend == "ray":   # the Ray launcher's own restart loop
        cfg["dist"]["max_failures"] = max(cfg["dist"]["max_failures"], args.max_restarts)
    if args.min_workers is not None:
        _check_min_workers(args, cfg, backend)
    if backend == "mpi":
        return _main_mpi(args, cfg, out)
    check_out_dir(out, args.resume, args.force)
    preflight(cfg)
    _start_run_dir(out, cfg, args)
    if backend == "ray":
        from distbp.train.ray_trainer import run_ray
        summary = run_ray(cfg, out, resume=args.resume, address=args.address, trace=args.trace,
                          quiet=args.quiet)
    elif backend == "single" or cfg["dist"]["workers"] == 1 and backend == "local" \
            and not args.max_restarts:     # in this process (a restart needs worker processes)
        from distbp import comm as C
        summary = _worker(cfg, str(out), args.resume, args.trace, args.quiet, C.init("single"))
    else:
        from distbp import comm as C
        n = cfg["dist"]["workers"]
        from distbp.train.restart import run_with_restarts

        def start(resume, workers):
            run_cfg = {**cfg, "dist": {**cfg["dist"], "workers": workers}}
            env = thread_env(run_cfg)
            return C.spawn(_local_worker, args=(run_cfg, str(out), resume, args.trace, args.quiet),
                           nprocs=workers, timeout=cfg["dist"]["timeout"], env=env)[0]
        summary = run_with_restarts(start, out, args.resume, args.max_restarts, n,
                                    args.min_workers)
    _finish(out, summary, args.trace)
    return 0


def thread_env(cfg):
    """BLAS threads of each local worker: train.threads, else the usable cores shared out."""
    from distbp.comm import usable_cpus
    threads = cfg["train"]["threads"] or max(1, usable_cpus() // cfg["dist"]["workers"])
    return {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS")}


def _check_min_workers(args, cfg, backend):
    n = cfg["dist"]["workers"]
    if args.min_workers > n:
        raise UsageError(f"--min-workers {args.min_workers} is more than the {n} worker(s) of "
                         "the run (--workers / dist.workers)")
    if backend == "ray":                    # elastic membership: go on without dead workers
        cfg["dist"]["min_workers"] = args.min_workers
    elif backend == "local" and not args.max_restarts:
        raise UsageError("--min-workers only matters when a run restarts: add --max-restarts K")
    elif backend not in ("local", "ray"):
        raise UsageError(f"--min-workers needs --backend local or ray, not {backend} (under "
                         "mpiexec: launch/mpirun_supervised.sh --min-workers M K mpiexec ...)")


def _start_run_dir(out, cfg, args):
    if args.force and not args.resume:
        clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        dump_config(cfg, out / "config.yaml")


def _finish(out, summary, trace):
    if trace:
        from distbp.train.trace import merge, overlap_fraction
        events = merge(out / "trace", out / "trace.json")
        frac = overlap_fraction(events)
        summary["overlap_fraction"] = frac
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(f"trace: {out / 'trace.json'} (all-reduce overlapped with backward: {frac:.0%})")
    keys = [k for k in ("test_accuracy", "test_bpc", "test_r2", "test_mse", "test_micro_f1",
                        "final_loss", "samples_per_second") if k in summary]
    print(f"done: {summary['steps']} steps on {summary['world_size']} worker(s); " +
          ", ".join(f"{k} {summary[k]:.4g}" for k in keys) + f"; results in {out}/")


def _local_worker(rank, cfg, out, resume, trace, quiet):
    from distbp import comm as C
    return _worker(cfg, out, resume, trace, quiet, C.init("local", timeout=cfg["dist"]["timeout"]))


def _worker(cfg, out, resume, trace, quiet, comm):
    from distbp.logs import cli_logging
    from distbp.train.trainer import Trainer
    with cli_logging(comm.rank):        # the library's log records as this command's plain lines
        return Trainer(cfg, out, comm, resume=resume, trace=trace, quiet=quiet).fit()


def _main_mpi(args, cfg, out):
    """Under mpirun every rank runs this; the world comes from MPI. Rank 0 checks the inputs and
    tells the others, so bad input is one line from one rank; a rank that fails later prints one
    line naming itself and aborts the whole MPI job instead of leaving the others waiting."""
    from distbp import comm as C
    comm = C.init("mpi", timeout=cfg["dist"]["timeout"])
    if args.workers is not None and args.workers != comm.size:
        raise UsageError(f"--workers {args.workers} disagrees with the MPI world of {comm.size} "
                         f"ranks; drop --workers or launch mpirun -n {args.workers}")
    cfg["dist"]["workers"] = comm.size
    problem = None
    if comm.rank == 0:
        try:
            check_out_dir(out, args.resume, args.force)
            preflight(cfg)
            _start_run_dir(out, cfg, args)
        except UsageError as e:
            problem = str(e)
    problem = comm.broadcast_object(problem)
    if problem is not None:
        comm.close()
        if comm.rank == 0:
            raise UsageError(problem)
        return 2
    try:
        summary = _worker(cfg, str(out), args.resume, args.trace, args.quiet, comm)
        if args.trace:
            comm.barrier()
    except BaseException as e:      # noqa: B036 - also KeyboardInterrupt: the others must not wait
        _abort(comm, e)
    if comm.rank == 0:
        _finish(out, summary, args.trace)
    comm.close()
    return 0


def _abort(comm, error):
    from distbp import comm as C
    # MPI_Abort has to reach the launcher; across a cut link it may never return
    threading.Timer(3.0, os._exit, (1,)).start()
    if os.environ.get("DISTBP_DEBUG"):
        traceback.print_exception(error)
    first = str(error).splitlines()[0] if str(error) else ""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" [in {frames[-1].name}, {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}]" \
        if frames else ""
    from distbp.cli import stderr_line
    stderr_line(f"distbp train: error: rank {comm.rank} of {comm.size} failed: "
                 f"{type(error).__name__}: {first}{where}")
    # mpiexec forwards each rank's stderr through its proxy, and MPI_Abort makes it kill the job: a
    # line not yet forwarded is lost (seen on a loaded machine), so the proxy gets a moment first.
    # Every survivor of a silent rank times out at about the same moment, each naming the peer it
    # waited for; a longer grace lets all of them report before the abort, so the rank named by
    # others and silent itself stands out.
    time.sleep(1.0 if isinstance(error, C.CommError) else 0.3)
    comm.abort(1)
