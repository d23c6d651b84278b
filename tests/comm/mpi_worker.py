"""The shared test body under mpiexec (run by tests/comm/test_mpi.py; also usable by hand):

    mpiexec -n 4 python -m tests.comm.mpi_worker

Each rank prints one line `OK {json summary}` (and `TIMEOUT-OK`), or `FAIL ...` and exits 1; its
last line, `BYE rank`, says it got through everything and is only exiting.
Runs the body with the ring and with algorithm="native", then mismatch detection (debug mode and
always on), then
(last, since it leaves MPI requests cancelled) the timeout of a silent peer, then exits without
MPI_Finalize so the cancelled exchange cannot hang shutdown.
"""
import json
import os
import sys
import time
import traceback

import numpy as np

import distbp.comm
from tests.comm import bodies


def check_mismatch(comm, dtype=np.float32):
    """The last rank calls with another count (debug mode) or dtype (always on: no debug): every
    rank raises naming the mismatched call, at once (well before the 30 s timeout)."""
    n = 12 if comm.rank == comm.size - 1 and dtype == np.float32 else 10
    if comm.rank == comm.size - 1 and dtype != np.float32:
        n = 10
    else:
        dtype = np.float32
    t0 = time.monotonic()
    try:
        comm.allreduce(np.ones(n, dtype), tag="bucket 1 of 1")
        comm.barrier()
    except distbp.comm.CommError as e:
        detail = "count=12" if comm.debug else "allreduce(float64, count=10, op=sum, bucket 1 of 1)"
        assert "mismatched collectives" in str(e) and detail in str(e), str(e)
        assert time.monotonic() - t0 < 10, (time.monotonic() - t0, str(e))
        return 1
    raise AssertionError(f"a mismatch (debug={comm.debug}) was not caught")


def check_timeout(comm):
    """The last rank stops answering; the others raise within the timeout, naming it."""
    silent = comm.size - 1
    if comm.rank == silent:
        time.sleep(comm.timeout + 0.5)
        return 1
    t0 = time.monotonic()
    try:
        comm.allreduce(np.ones(1000, np.float32))
    except distbp.comm.CommError as e:
        elapsed = time.monotonic() - t0
        assert e.op == "allreduce" and f"waiting for rank" in str(e), str(e)
        assert elapsed < comm.timeout + 2, elapsed
        return 1
    raise AssertionError("allreduce with a silent peer did not time out")


def say(line):
    os.write(1, (line + "\n").encode())  # one write: lines of different ranks never interleave


def main():
    """The JSON-able summary of every check (the timeout check runs after it is printed)."""
    comm = distbp.comm.init("mpi")
    assert comm.backend == "mpi" and distbp.comm.init().backend in ("mpi", "single")
    summary = bodies.run_all(comm)
    summary["transport"] = comm.transport_name
    native = distbp.comm.init("mpi", algorithm="native")
    summary["native"] = bodies.check_allreduce(native) + bodies.check_identical_bits(native)
    native.close()
    if comm.size > 1:  # a size-1 world has no one to disagree with
        summary["mismatch"] = check_mismatch(distbp.comm.init("mpi", debug=True))
        summary["mismatch"] &= check_mismatch(distbp.comm.init("mpi"), np.float64)
    return summary


def finish(comm):
    """The timeout check, then every rank leaves together: hydra kills the ranks still running as
    soon as one exits without MPI_Finalize, so a rank that lingered (sleeping, say) would die by
    SIGKILL and fail the job. A barrier on COMM_WORLD (not the communicator whose exchange was
    cancelled) lines the exits up; a rank descheduled between the barrier and its exit can still be
    killed (4 ranks on 2 cores: about 1 run in 10-30, and under load a rank that had left the
    barrier but not yet written), which is why every rank says BYE *before* the barrier: once any
    rank is past it, every rank has said BYE, so a kill after that loses nothing."""
    if comm.rank == 0:
        unlink_mpich_segments()  # before the exits begin: hydra may kill a rank that is not done
    if comm.size > 1:
        ok = check_timeout(comm)
        if comm.rank != comm.size - 1:
            say(f"TIMEOUT-OK {comm.rank} {ok}")
    say(f"BYE {comm.rank}")
    if comm.size > 1:
        from mpi4py import MPI
        MPI.COMM_WORLD.Barrier()


def unlink_mpich_segments():
    """Without MPI_Finalize MPICH leaves its shared-memory segment in /dev/shm (4 MB a run); every
    rank mapped it in MPI_Init, so its name can go."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/dev/shm/mpich_shm_" in line}
    for path in paths:
        try:
            os.unlink(path.removesuffix(" (deleted)"))
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    rank = os.environ.get("PMI_RANK", "?")
    try:
        say("OK " + json.dumps(main()))
        finish(distbp.comm.init("mpi", timeout=1.0))
        code = 0
    except BaseException:
        say(f"FAIL rank={rank}\n{traceback.format_exc()}")
        code = 1
    sys.stdout.flush()
    os._exit(code)
