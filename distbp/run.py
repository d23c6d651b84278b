"""`distbp run`: launch your own training script on N processes, as torchrun does.

    distbp run --nproc-per-node 2 train.py --epochs 3      # N local processes, shared memory
    mpiexec -n 2 python train.py --epochs 3                # the same file under MPI
    distbp run --backend ray --nproc-per-node 2 train.py   # N Ray actors; collectives through Ray

The script calls `dist.init_process_group()`, which finds the world the launcher made. Each local
rank gets RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE as torchrun sets them, its BLAS
limited to usable cores / N threads (OMP_NUM_THREADS if set), and the heap kept between steps
(distbp/train/allocator.py, as `distbp train` does; MALLOC_* variables win). A rank that raises, exits non-zero, is killed or stops
answering in a collective is named on one line (its traceback before it); the others are stopped,
the shared memory is unlinked and the exit code is 1 -- or, with --max-restarts K, the whole
group starts again (as torchrun's does; the script resumes from its own checkpoint).
"""
import argparse
import os
import runpy
import sys

from distbp.errors import UsageError


def parse_args(argv):
    p = argparse.ArgumentParser(prog="distbp run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc-per-node", "--nproc_per_node", dest="nproc_per_node", default="1",
                   help="processes per node: a number, or 'auto' (one per usable core)")
    p.add_argument("--nnodes", default="1",
                   help="nodes (local: 1; ray: the world is nnodes * nproc-per-node actors)")
    p.add_argument("--node-rank", "--node_rank", dest="node_rank", type=int, default=0,
                   help="torchrun's; only 0 (distbp run starts every rank itself)")
    p.add_argument("--master-addr", "--master_addr", dest="master_addr", default=None,
                   help="torchrun's rendezvous host: not used (local ranks meet in shared memory, "
                        "Ray ranks through the Ray cluster: see --address)")
    p.add_argument("--master-port", "--master_port", dest="master_port", default=None,
                   help="see --master-addr")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: processes joined by shared memory; ray: actors on a Ray cluster")
    p.add_argument("--address", default=None,
                   help="ray: the cluster to join (default RAY_ADDRESS, else a running local Ray, "
                        "else start one; 'local' always starts a new one)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds a collective waits for a peer before the job fails naming it "
                        "(default DISTBP_COMM_TIMEOUT or 30)")
    p.add_argument("--max-restarts", "--max_restarts", dest="max_restarts", type=int, default=0,
                   metavar="K", help="when a rank fails, start the whole group again, up to K "
                                     "times (the script resumes itself from its own checkpoint; "
                                     "DISTBP_RESTART_COUNT / TORCHELASTIC_RESTART_COUNT say which "
                                     "attempt it is)")
    p.add_argument("-m", "--module", action="store_true",
                   help="run `script` as a module (python -m script)")
    p.add_argument("script", help="the training script (or module with -m)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="passed to the script")
    return p.parse_args(argv)


def world_of(args):
    """(nproc_per_node, nnodes) from the flags, with the culprit named on bad values."""
    from distbp.comm import usable_cpus
    nproc = args.nproc_per_node
    if nproc in ("auto", "cpu"):
        nproc = str(usable_cpus())
    if not nproc.isdigit() or int(nproc) < 1:
        raise UsageError(f"--nproc-per-node {args.nproc_per_node!r}: give a number >= 1 or 'auto'")
    if not args.nnodes.isdigit() or int(args.nnodes) < 1:
        raise UsageError(f"--nnodes {args.nnodes!r}: give a number >= 1 (elastic ranges like 1:4 "
                         "are torchrun's, not distbp's)")
    nnodes = int(args.nnodes)
    if args.backend == "local":
        if nnodes != 1 or args.node_rank != 0:
            raise UsageError(f"--nnodes {nnodes} --node-rank {args.node_rank}: the local backend "
                             "runs on one node; for several use `mpiexec -n N python script.py` "
                             "or `distbp run --backend ray`")
    elif args.node_rank != 0:
        raise UsageError("--node-rank: with --backend ray the driver starts every rank; leave it "
                         "out")
    if args.master_addr or args.master_port:
        raise UsageError("--master-addr/--master-port: distbp run needs no rendezvous host (local "
                         "ranks meet in shared memory; Ray ranks join the cluster given by "
                         "--address or RAY_ADDRESS)")
    return int(nproc), nnodes


def main(argv):
    args = parse_args(argv)
    nproc, nnodes = world_of(args)
    if not args.module and not os.path.isfile(args.script):
        raise UsageError(f"script {args.script!r} not found")
    if args.max_restarts < 0:
        raise UsageError(f"--max-restarts must be >= 0, got {args.max_restarts}")
    timeout = args.timeout if args.timeout is not None else float(
        os.environ.get("DISTBP_COMM_TIMEOUT", 30.0))
    for attempt in range(args.max_restarts + 1):
        # torchrun's variable, so scripts written for it find their attempt the same way
        os.environ["DISTBP_RESTART_COUNT"] = os.environ["TORCHELASTIC_RESTART_COUNT"] = str(attempt)
        try:
            return _run(args, nproc, nnodes, timeout)
        except Exception as e:
            from distbp.comm import CommError
            from distbp.errors import JobFailed
            if not isinstance(e, (CommError, JobFailed)) or attempt == args.max_restarts:
                raise
            sys.stderr.write(f"distbp run: {str(e).splitlines()[0]}; restart "
                             f"{attempt + 1}/{args.max_restarts}\n")


def _run(args, nproc, nnodes, timeout):
    try:
        if args.backend == "ray":
            from distbp.ray.collective import run_on_ray
            return run_on_ray(args.script, args.script_args, args.module, nproc * nnodes, timeout,
                              args.address)
        return run_local(args.script, args.script_args, args.module, nproc, timeout)
    except Exception as e:              # the failed rank's traceback, then cli.py's one line
        if getattr(e, "traceback", ""):
            who = f"rank {e.rank}" if getattr(e, "rank", None) is not None else "the failed rank"
            sys.stderr.write(f"--- {who} ---\n{_from_script(e.traceback, args.script).rstrip()}\n")
        raise


def run_local(script, argv, module, nproc, timeout):
    from distbp import comm as C
    threads = str(max(1, C.usable_cpus() // nproc))
    env = {"WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc), "GROUP_RANK": "0",
           "DISTBP_COMM_TIMEOUT": str(timeout)}
    for var in ("DISTBP_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT"):   # set by main
        if var in os.environ:
            env[var] = os.environ[var]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = os.environ.get(var, threads)
    C.spawn(_local_rank, args=(script, argv, module), nprocs=nproc, timeout=timeout, env=env)
    return 0


def _from_script(traceback_text, script):
    """The traceback from the script's first frame on (the launcher's frames say nothing)."""
    lines = traceback_text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if f'File "{os.path.abspath(script)}"' in line),
              None)
    return traceback_text if at is None else lines[0] + "".join(lines[at:])


def _local_rank(rank, script, argv, module):
    os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(rank)
    runtime(int(os.environ["OMP_NUM_THREADS"]))
    run_script(script, argv, module)


def runtime(threads):
    """What `distbp train` does for its workers. The BLAS limit is set through threadpoolctl: the
    forkserver loaded numpy, and so OpenBLAS, before the worker's OMP_NUM_THREADS existed (two
    ranks of two BLAS threads each on two cores ran the CNN's convolutions 7x slower)."""
    from distbp.train.allocator import keep_heap
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        pass
    keep_heap()


def run_script(script, argv, module=False):
    """Run the user's script as `python script ARGS` would (as __main__, its directory first on
    sys.path, sys.argv set); a non-zero sys.exit is a failure of this rank."""
    if module:
        sys.argv = [script] + list(argv)
        run = lambda: runpy.run_module(script, run_name="__main__", alter_sys=True)
    else:
        path = os.path.abspath(script)
        sys.argv = [script] + list(argv)
        sys.path.insert(0, os.path.dirname(path))
        run = lambda: runpy.run_path(path, run_name="__main__")
    try:
        run()
    except SystemExit as e:
        if e.code not in (None, 0):
            raise RuntimeError(f"{script} called sys.exit({e.code!r})") from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
