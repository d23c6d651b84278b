"""The local launcher: start N worker processes linked by shared memory, collect their results.

    def train(lr):                      # must be importable (a module-level function)
        comm = distbp.comm.init("local")  # or "auto": the same code then runs under mpiexec
        ...
        return {"loss": loss}           # small picklable summary, returned to the launcher

    results = distbp.comm.spawn(train, nprocs=4, args=(0.1,))   # [summary of rank 0, ..., rank 3]

Workers run fn(*args); fn creates its communicator itself with init("local") (or init("auto")).
If a worker raises, is killed, or hangs, the others are told through the shared header and stop;
each worker still running `timeout` seconds after the first failure is killed; the segment is
unlinked; spawn raises CommError naming the failed rank, with that rank's traceback. Ctrl-C is
forwarded to the workers as SIGINT. A worker whose heartbeat stops (heartbeat.py: SIGSTOPped,
wedged) is killed and named within DISTBP_HEARTBEAT_TIMEOUT seconds, whatever `timeout` is.
Workers write their flight records (flight.py) to DISTBP_FLIGHT_DIR, by default a directory in the
temporary directory named after the segment, made only if a record is written.
"""
import glob
import multiprocessing as mp
import multiprocessing.connection
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
import traceback
from multiprocessing import resource_tracker, shared_memory

from distbp.comm import flight, heartbeat, local, segment
from distbp.comm.base import CommError


def spawn(fn, nprocs, args=(), timeout=30.0, env=None, start_method="forkserver",
          slot_bytes=local.DEFAULT_SLOT_BYTES, nslots=None,
          small_bytes=local.DEFAULT_SMALL_BYTES):
    """Run fn(*args) in `nprocs` processes of a local world; return their results in rank order.

    timeout: seconds a collective waits for a peer before raising CommError (exported to workers as
    DISTBP_COMM_TIMEOUT), and how long workers get to exit after the first failure.
    env: extra environment variables, set in each worker before fn runs.
    slot_bytes, nslots: the ring channels (nslots None: local.default_nslots, by oversubscription);
    small_bytes: all-reduces up to this size take the small-message path (ring.allreduce_small)
    through mailboxes of this size."""
    if not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"spawn needs nprocs >= 1, got {nprocs!r}")
    if slot_bytes % 64:
        raise ValueError(f"slot_bytes must be a multiple of 64, got {slot_bytes}")
    nslots = nslots or local.default_nslots(nprocs)
    local.spin_ms({**os.environ, **(env or {})})  # a bad DISTBP_COMM_SPIN_MS stops here, not in N workers
    ctx = mp.get_context(start_method)
    if start_method == "forkserver":
        ctx.set_forkserver_preload(["numpy", "distbp.comm.local"])
    if small_bytes < 0:
        raise ValueError(f"small_bytes must be >= 0, got {small_bytes}")
    *_, total = segment.layout(nprocs, slot_bytes, nslots, small_bytes)
    shm = shared_memory.SharedMemory(f"distbp_{os.getpid()}_{secrets.token_hex(4)}", create=True,
                                     size=total)
    procs, bells = [], []
    try:
        for rank in range(nprocs):  # each rank's doorbell (see shm.py), unlinked with the segment
            bells.append(segment.bell_path(shm.name, rank))
            os.mkfifo(bells[-1], 0o600)
            # Reclaimed like the segment if the launcher is killed: the resource tracker's
            # shared_memory cleanup is shm_unlink, which removes /dev/shm/<name>, a FIFO too.
            resource_tracker.register(_tracker_name(bells[-1]), "shared_memory")
        header = shm.buf[:segment.HEADER_WORDS * 8].cast("q")
        header[0], header[1] = segment.MAGIC, nprocs
        header.release()
        world_env = {local.ENV_NAME: shm.name, local.ENV_SIZE: str(nprocs),
                     local.ENV_SLOT: str(slot_bytes), local.ENV_NSLOTS: str(nslots),
                     local.ENV_SMALL: str(small_bytes),
                     local.ENV_TIMEOUT: str(float(timeout)),
                     flight.ENV_DIR: (env or {}).get(flight.ENV_DIR) or os.environ.get(flight.ENV_DIR)
                     or os.path.join(tempfile.gettempdir(), f"distbp-flight-{shm.name}")}
        for rank in range(nprocs):
            worker_env = {**(env or {}), **world_env, local.ENV_RANK: str(rank)}
            reader, writer = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, args=(rank, worker_env, fn, args, writer, os.getpid()),
                            name=f"distbp-rank{rank}")
            procs.append((p, reader))   # before start(): a Ctrl-C while starting must reach it too
            p.start()
            writer.close()
        return _monitor(procs, shm, timeout, heartbeat.heartbeat_timeout({**os.environ, **(env or {})}))
    except KeyboardInterrupt:
        for p, _ in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        _reap(procs, min(timeout, 5.0))
        raise
    finally:
        _reap(procs, 1.0)
        shm.close()
        shm.unlink()
        for path in bells:
            os.unlink(path)
            resource_tracker.unregister(_tracker_name(path), "shared_memory")
        # Symmetric allocations are unlinked once every rank has mapped them; a world that died
        # in the middle of one leaves its file behind.
        for path in glob.glob(f"/dev/shm/{glob.escape(shm.name)}.sym*"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _tracker_name(path):
    return "/" + os.path.basename(path)


def _exit_with_launcher(launcher_pid):
    """Workers end when the launcher is gone (SIGKILLed, say): with the forkserver start method
    their parent is the forkserver, not the launcher, so nothing else would stop them. A dead
    launcher whose own parent has not reaped it yet is a zombie, which kill(pid, 0) still finds."""
    has_proc = os.path.exists("/proc/self/stat")      # elsewhere kill(pid, 0) must do

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(launcher_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            if has_proc:
                try:
                    with open(f"/proc/{launcher_pid}/stat") as f:
                        if f.read().split(")")[-1].split()[0] == "Z":
                            os._exit(1)
                except OSError:                        # gone between the two checks
                    os._exit(1)
    threading.Thread(target=watch, name="distbp-launcher-watch", daemon=True).start()


def _worker(rank, env, fn, args, conn, launcher_pid=None):
    os.environ.update(env)
    if launcher_pid:
        _exit_with_launcher(launcher_pid)
    try:
        result = fn(*args)
        from distbp.comm import world
        world.close_all()
        conn.send(("ok", result))
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):    # Ctrl-C or the launcher's SIGTERM: say where we were
            flight.dump_all("interrupted")
        # Secondary: this rank only noticed another rank's failure (the root cause is elsewhere).
        secondary = isinstance(e, CommError) and e.rank is not None and e.rank != rank
        if not secondary:
            segment.mark_failed(env[local.ENV_NAME], rank, 1, 1)
        conn.send(("error", f"{type(e).__name__}: {e}", traceback.format_exc(), secondary,
                   getattr(e, "rank", None), getattr(e, "op", None)))
        conn.close()
        sys.exit(1)


class _Pulse:
    """The workers' heartbeat counters in the header: which have not moved for `seconds` of the
    launcher's own watching (a pause of the launcher itself restarts the count)."""

    def __init__(self, buf, n, seconds):
        self.header = buf[:segment.rank_word(n, 0) * 8].cast("q")
        self.n, self.seconds = n, seconds
        self.last = [0] * n
        self.since = [time.monotonic()] * n
        self.checked = time.monotonic()

    def stalled(self):
        now = time.monotonic()
        if now - self.checked > 2 * heartbeat.INTERVAL:  # I was not running: start over
            self.since = [now] * self.n
        self.checked = now
        out = []
        for r in range(self.n):
            beat = self.header[segment.rank_word(r, segment.R_BEAT)]
            if beat != self.last[r] or beat in (0, heartbeat.DONE):
                self.last[r], self.since[r] = beat, now
            elif now - self.since[r] >= self.seconds:
                out.append((r, now - self.since[r]))
        return out

    def close(self):
        self.header.release()


def _monitor(procs, shm, timeout, heartbeat_seconds=0):
    pulse = _Pulse(shm.buf, len(procs), heartbeat_seconds) if heartbeat_seconds > 0 else None
    try:
        return _watch(procs, shm, timeout, pulse)
    finally:
        if pulse is not None:
            pulse.close()


def _watch(procs, shm, timeout, pulse):
    n = len(procs)
    results, reported = [None] * n, [None] * n  # reported[r]: "ok" or an error tuple
    failures, first_failure = [], None
    open_conns = {reader: r for r, (_, reader) in enumerate(procs)}
    while True:
        waitables = list(open_conns) + [p.sentinel for p, _ in procs if p.exitcode is None]
        if not waitables:
            break
        for obj in mp.connection.wait(waitables, timeout=0.2):
            if obj in open_conns:
                r = open_conns[obj]
                try:
                    msg = obj.recv()
                except (EOFError, OSError):
                    del open_conns[obj]
                    continue
                if msg[0] == "ok":
                    results[r], reported[r] = msg[1], "ok"
                else:
                    reported[r] = msg
                    failures.append((r, msg))
        for r, (p, reader) in enumerate(procs):
            if p.exitcode is not None and reader not in open_conns and reported[r] is None:
                reported[r] = ("exit", p.exitcode)
                failures.append((r, ("exit", p.exitcode)))
                segment.mark_failed(shm.buf, r, 2, p.exitcode)
        for r, seconds in pulse.stalled() if pulse is not None else ():
            p = procs[r][0]
            if p.exitcode is None and reported[r] is None:   # stopped or wedged: it cannot be asked
                segment.mark_failed(shm.buf, r, segment.STALLED, round(seconds))
                reported[r] = ("stalled", seconds)
                failures.append((r, reported[r]))
                p.kill()
        if failures and first_failure is None:
            first_failure = time.monotonic()
        if first_failure is not None and time.monotonic() - first_failure > timeout:
            for r, (p, _) in enumerate(procs):
                if p.exitcode is None:
                    p.kill()
                    failures.append((r, ("hung", timeout)))
            _reap(procs, 5.0)
            break
    if failures:
        raise _spawn_error(failures, n)
    return results


def _spawn_error(failures, n):
    """One CommError naming the root-cause rank: a rank that died or raised on its own first, then
    a rank that hung (killed after the timeout: the others only timed out waiting for it), then
    ranks that merely noticed another's failure (secondary)."""
    def priority(item):
        kind = item[1][0]
        return {"exit": 0, "stalled": 0, "hung": 2}.get(kind, 3 if kind == "error" and item[1][3] else 1)
    r, msg = min(failures, key=priority)
    # What the others were doing when they noticed: the op named by their CommErrors.
    op = next((m[5] for _, m in failures if m[0] == "error" and m[5]), None)
    during = f" during {op}" if op else ""
    others = sorted({q for q, _ in failures} - {r})
    tail = f" (ranks {others} also failed)" if others else ""
    tb = ""
    if msg[0] == "exit":
        text = f"rank {r} of {n} {segment.describe_exit(2, msg[1])}{during}{tail}"
        blamed = r
    elif msg[0] == "error":
        _, summary, tb, secondary, peer, own_op = msg
        blamed = peer if secondary and peer is not None else r
        context = f" (the other ranks were in {op})" if op and not own_op else ""
        op = own_op or op
        text = f"rank {r} of {n} failed: {summary}{context}{tail}\n\n--- traceback of rank {r} ---\n{tb}"
    elif msg[0] == "stalled":
        text = (f"rank {r} of {n} stopped answering{during}: no heartbeat for {msg[1]:.0f} s "
                f"(stopped, wedged or starved of CPU), so it was killed{tail}")
        blamed = r
    else:
        seen = next(((q, m[1]) for q, m in failures if m[0] == "error"), None)
        text = (f"rank {r} of {n} stopped answering{during}: the other ranks gave up waiting and it "
                f"was killed {msg[1]}s later{tail}" + (f"; rank {seen[0]} saw: {seen[1]}" if seen else ""))
        blamed = r
    err = CommError(text, rank=blamed, op=op)
    err.traceback, err.failures = tb, failures
    return err


def _reap(procs, grace):
    """Wait up to `grace` seconds for workers to exit, then SIGKILL and join the rest."""
    procs = [(p, r) for p, r in procs if p.pid is not None]   # a start() cut short never ran
    deadline = time.monotonic() + grace
    for p, _ in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p, _ in procs:
        if p.exitcode is None:
            p.kill()
            p.join()
