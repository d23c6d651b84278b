"""`distbp bench allreduce`: time distbp's all-reduce against MPI's own and torch.distributed/gloo.

    distbp bench allreduce --backend local --workers 4     # shared-memory ring (+ peers, same run)
    mpiexec -n 4 distbp bench allreduce                    # MPI ring (mpi is the default under mpiexec)
    mpiexec -n 4 distbp bench allreduce --transport mpi    # the ring's steps as MPI messages
    distbp bench allreduce --sizes 4K,1M,40M --iters 20 --dtype float64
    distbp bench allreduce --buffer symmetric              # reduce comm.empty() arrays (one node)

Prints, per size: median time of a warmed-up call (the slowest rank's time for each call), algorithm
bandwidth (bytes / time) and bus bandwidth (bytes * 2(N-1)/N / time, comparable across N as in
nccl-tests), then the bus bandwidth of MPI_Allreduce (in place) and gloo's all_reduce and our ratio
to each (>1: distbp is faster). With --backend local the MPI peer runs as `mpiexec -n N` in a
subprocess; gloo runs in the same worker processes over TCP when PyTorch is installed (loopback on
one host, rank 0's host address across hosts). `--peers mpi` keeps MPI's comparison only.
"""
import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from distbp.comm import hosts
from distbp.errors import UsageError

SIZES = "4K,64K,1M,4M,16M,40M,100M"
UNITS = {"K": 10**3, "M": 10**6, "G": 10**9}
PEERS = ("mpi", "gloo")
GLOO_TIMEOUT = float(os.environ.get("DISTBP_BENCH_GLOO_TIMEOUT", "20"))  # seconds to join


def parse_sizes(text):
    sizes = []
    for item in text.split(","):
        item = item.strip().upper().removesuffix("B")
        try:
            sizes.append(int(float(item[:-1]) * UNITS[item[-1]]) if item[-1:] in UNITS else int(item))
        except (ValueError, IndexError):
            raise UsageError(f"--sizes: cannot read {item!r}; use bytes like 4K,1M,40M,100M") from None
    return sizes


def iterations(nbytes, iters):
    return iters or int(max(5, min(200, 4e8 // max(nbytes, 1))))


def time_calls(comm, fn, iters, warmup=3):
    """Median over calls of the slowest rank's time (each call starts after a barrier)."""
    for _ in range(warmup):
        fn()
    times = np.empty(iters)
    for i in range(iters):
        comm.barrier()
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(comm.allgather(times).max(0)))


def run_rank(comm, sizes, iters, dtype, peers, ours=True, buffer="numpy"):
    """Every rank runs this; returns {"distbp" and each peer: [seconds per size]}. `comm` also
    provides the barriers and the gather of timings. buffer: what distbp reduces, a plain numpy
    array or one from comm.empty (symmetric memory); the peers always get a plain numpy array."""
    out = {name: [] for name in ["distbp", *peers]}
    native = gloo = None
    if "mpi" in peers:
        from distbp.comm.mpi import MPICommunicator
        native = MPICommunicator(algorithm="native")
    if "gloo" in peers:
        gloo = _gloo_group(comm)
    for nbytes in sizes:
        count = max(1, nbytes // np.dtype(dtype).itemsize)
        x = np.zeros(count, dtype)
        k = iterations(nbytes, iters)
        if ours:
            mine = comm.empty(count, dtype) if buffer == "symmetric" else x
            out["distbp"].append(time_calls(comm, lambda: comm.allreduce(mine), k))
            del mine
        if native is not None:
            out["mpi"].append(time_calls(comm, lambda: native.allreduce(x), k))
        if gloo is not None:
            t = gloo.from_numpy(x)
            out["gloo"].append(time_calls(comm, lambda: gloo.distributed.all_reduce(t), k))
    if native is not None:
        native.close()
    if gloo is not None:
        gloo.distributed.destroy_process_group()
    return out


def _gloo_group(comm, timeout=GLOO_TIMEOUT):
    """torch.distributed on gloo (benchmark peer only), its rendezvous on an address of rank 0 that
    every rank can reach (hosts.reachable_address: loopback on one host). None without PyTorch or
    if any rank cannot join within `timeout` seconds (then every rank goes on without gloo)."""
    try:
        import torch
        import torch.distributed
    except ImportError:
        return None
    addr = hosts.reachable_address(comm)
    port = None
    if comm.rank == 0:
        with socket.socket() as s:
            s.bind((addr, 0))
            port = s.getsockname()[1]
    port = comm.broadcast_object(port)
    if addr != "127.0.0.1" and "GLOO_SOCKET_IFNAME" not in os.environ and hosts.interface():
        # gloo binds its pairs to the host name's address, 127.0.0.1 inside a namespace host
        os.environ["GLOO_SOCKET_IFNAME"] = hosts.interface()
    torch.set_num_threads(1)
    error = None
    try:
        torch.distributed.init_process_group("gloo", init_method=f"tcp://{addr}:{port}",
                                             rank=comm.rank, world_size=comm.size,
                                             timeout=datetime.timedelta(seconds=timeout))
    except Exception as e:  # a peer only: say why and go on without it
        error = f"{type(e).__name__}: {str(e)[:200]}"
    errors = comm.allgather_object(error)
    if any(errors):
        if comm.rank == 0:
            bad = [f"rank {r}: {e}" for r, e in enumerate(errors) if e]
            print(f"(gloo peer skipped: tcp://{addr}:{port} not joined; {bad[0]})", file=sys.stderr)
        if error is None:
            torch.distributed.destroy_process_group()
        return None
    return torch


def _local_worker(rank, sizes, iters, dtype, peers, buffer):
    import distbp.comm
    comm = distbp.comm.init("local")
    return run_rank(comm, sizes, iters, dtype, peers, buffer=buffer)


def _mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


def _mpi_peer_subprocess(workers, args):
    """MPI_Allreduce timings from `mpiexec -n workers` (for --backend local); None if unavailable."""
    exe = _mpiexec()
    if exe is None:
        return None
    cmd = [exe, "-n", str(workers), sys.executable, "-m", "distbp.comm.bench", "allreduce",
           "--backend", "mpi", "--only-mpi", "--json", "--sizes", args.sizes, "--dtype", args.dtype,
           "--iters", str(args.iters)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"(MPI peer failed: {proc.stderr.strip()[-300:]})", file=sys.stderr)
        return None
    return json.loads(lines[-1])["mpi"]


def table(results, sizes, n, backend, dtype, buffer="numpy"):
    bus = 2 * (n - 1) / n if n > 1 else 1.0
    peers = [p for p in ("mpi", "gloo") if results.get(p)]
    head = f"{'size':>9} {'time(us)':>10} {'algbw GB/s':>11} {'busbw GB/s':>11}"
    for p in peers:
        head += f" | {p + ' busbw':>11} {'ratio':>6}"
    lines = [f"distbp bench allreduce: backend={backend} N={n} dtype={dtype} buffer={buffer} "
             f"(median over calls of the slowest rank, warmed up; ratio = distbp busbw / peer busbw)",
             head]
    for i, nbytes in enumerate(sizes):
        t = results["distbp"][i]
        row = f"{_fmt_bytes(nbytes):>9} {t * 1e6:10.1f} {nbytes / t / 1e9:11.2f} {nbytes * bus / t / 1e9:11.2f}"
        for p in peers:
            tp = results[p][i]
            row += f" | {nbytes * bus / tp / 1e9:11.2f} {tp / t:6.2f}"
        lines.append(row)
    return "\n".join(lines)


def _fmt_bytes(n):
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def main(argv):
    from distbp.comm import world
    p = argparse.ArgumentParser(prog="distbp bench", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["allreduce"])
    p.add_argument("--backend", choices=["mpi", "local"], default=None,
                   help="default: mpi under mpiexec, else local")
    p.add_argument("--workers", type=int, default=2, help="local backend: number of processes")
    p.add_argument("--transport", choices=["auto", "shm", "mpi"], default=None,
                   help="mpi backend: the ring's steps over shared memory or MPI messages (default "
                        "auto: shared memory when every rank is on one node)")
    p.add_argument("--sizes", default=SIZES, help=f"bytes per rank, comma-separated (default {SIZES})")
    p.add_argument("--iters", type=int, default=0, help="timed calls per size (default: by size)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64", "int32", "int64"])
    p.add_argument("--buffer", choices=["numpy", "symmetric"], default="numpy",
                   help="what distbp reduces: a plain numpy array (default), or comm.empty() "
                        "symmetric memory, read by the peers where it lies on one node (the "
                        "peers always reduce a plain numpy array)")
    p.add_argument("--no-peers", action="store_true", help="time distbp only (= --peers none)")
    p.add_argument("--peers", default="mpi,gloo",
                   help="comparisons to run, comma-separated from mpi,gloo, or none (default "
                        "mpi,gloo; across hosts gloo meets at rank 0's host address, or "
                        "MASTER_ADDR, and is skipped if it cannot join within "
                        "DISTBP_BENCH_GLOO_TIMEOUT seconds, default 20)")
    p.add_argument("--only-mpi", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the raw timings as JSON")
    args = p.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    backend = args.backend or ("mpi" if world.mpi_world_size() > 1 else "local")
    peers = [] if args.no_peers or args.peers == "none" else [q.strip() for q in args.peers.split(",")]
    if any(q not in PEERS for q in peers):
        raise UsageError(f"--peers: {args.peers!r}; choose from mpi,gloo or none")
    if args.transport and backend != "mpi":
        raise UsageError("--transport applies to the mpi backend only (run under mpiexec)")
    if backend == "mpi":
        comm = world.init("mpi", **({"transport": args.transport} if args.transport else {}))
        if args.buffer == "symmetric" and comm.size > 1 and getattr(comm.transport, "heap", None) is None:
            comm.close()
            raise UsageError(f"--buffer symmetric needs the ranks to share memory (one node, the shm "
                             f"transport); this run uses the {comm.transport_name} transport")
        if args.only_mpi:
            res = run_rank(comm, sizes, args.iters, args.dtype, ["mpi"], ours=False)
        else:
            res = run_rank(comm, sizes, args.iters, args.dtype, peers, buffer=args.buffer)
        n, rank = comm.size, comm.rank
        comm.close()
    else:
        if args.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {args.workers}")
        from distbp.comm import spawn
        local_peers = [q for q in peers if q != "mpi"]
        res = spawn(_local_worker, args=(sizes, args.iters, args.dtype, local_peers, args.buffer),
                    nprocs=args.workers, timeout=120)[0]
        if "mpi" in peers:
            res["mpi"] = _mpi_peer_subprocess(args.workers, args)
        n, rank = args.workers, 0
    if rank == 0:
        if args.json:
            transport = comm.transport_name if backend == "mpi" else "shm"
            print(json.dumps({"backend": backend, "transport": transport, "buffer": args.buffer,
                              "n": n, "sizes": sizes, **res}))
        else:
            label = f"mpi ({comm.transport_name} transport)" if backend == "mpi" else backend
            print(table(res, sizes, n, label, args.dtype, args.buffer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
