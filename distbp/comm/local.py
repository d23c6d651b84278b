"""The local backend: N processes on one machine, linked by one shared-memory segment.

The launcher (launch.spawn) creates the segment and tells each worker where it is through env vars;
`init("local")` attaches. Layout (all offsets 64-byte aligned):

    header   int64 words: [0] magic, [1] size, [2] failed rank + 1 (0: none), [3] exit code or
             -signal, [4] failure kind (1 raised, 2 exited), [64 + r] collectives entered by rank r
    channel r  (rank r's outbox, read only by rank r+1): ctrl words [0] write seq (written by r),
             [8] read seq (written by r+1), then `nslots` slots of (64-byte header, slot_bytes payload)

Each channel is a single-producer single-consumer ring buffer: the writer copies a segment into a free
slot, then publishes it by bumping the write seq; the reader folds the slot straight into its
destination (np.add(dst, slot, out=dst), no temporary), then frees it by bumping the read seq. x86
keeps stores in order, so a reader that sees the new seq sees the data written before it.
Waiting spins briefly, then yields the core (2 cores, often more ranks than cores), then sleeps.
"""
import mmap
import os
import signal
import time

import numpy as np

from distbp.comm.base import CommError, Communicator

MAGIC = 0x64697374627021
HEADER_WORDS = 64
CTRL_BYTES = 128
SLOT_HEADER = 64
ENV_NAME, ENV_RANK, ENV_SIZE = "DISTBP_LOCAL_SHM", "DISTBP_LOCAL_RANK", "DISTBP_LOCAL_SIZE"
ENV_SLOT, ENV_NSLOTS, ENV_TIMEOUT = "DISTBP_LOCAL_SLOT_BYTES", "DISTBP_LOCAL_NSLOTS", "DISTBP_COMM_TIMEOUT"
DEFAULT_SLOT_BYTES = 256 << 10  # fits in L2 with a few in flight: writer and reader hit cache
DEFAULT_NSLOTS = 16  # 4 MB in flight per channel: an oversubscribed rank runs ahead, switches less
BLOCK_BYTES = 4 << 20  # ring.allreduce block per rank: N*4 MB stay in L3 through all 2(N-1) steps
POLLS_BEFORE_YIELD = 1000  # as MPICH: spin (the peer is on the other core), then yield it the core
SLEEP_AFTER = 0.02  # seconds of waiting after which a rank sleeps between polls (a slow peer)


def _round(n, to=4096):
    return -(-n // to) * to


def layout(size, slot_bytes, nslots):
    """(header bytes, channel bytes, total bytes) of a world."""
    header = _round((HEADER_WORDS + size) * 8)
    channel = _round(CTRL_BYTES + nslots * (SLOT_HEADER + slot_bytes))
    return header, channel, header + size * channel


def open_segment(name):
    """Map an existing segment by name (without multiprocessing's resource tracker, which would
    unlink it when the first worker exits: the launcher owns and unlinks it)."""
    fd = os.open(f"/dev/shm/{name}", os.O_RDWR)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


class ShmTransport:
    """Ring transport over the shared segment: outbox = channel[rank], inbox = channel[rank-1]."""

    def __init__(self, buf, rank, size, slot_bytes, nslots, timeout):
        self.rank, self.size, self.timeout, self.op = rank, size, timeout, "collective"
        self.slot_bytes, self.nslots = slot_bytes, nslots
        self.block_bytes = int(os.environ.get("DISTBP_LOCAL_BLOCK_BYTES", BLOCK_BYTES))  # 0: unblocked
        self.left, self.right = (rank - 1) % size, (rank + 1) % size
        hbytes, cbytes, _ = layout(size, slot_bytes, nslots)
        self._buf = buf
        self._mv = memoryview(buf)
        self.header = self._mv[:hbytes].cast("q")
        self._out = self._channel(hbytes + rank * cbytes)
        self._in = self._channel(hbytes + self.left * cbytes)
        self._w = self._out[0][0]  # my outbox's write seq (only I write it)
        self._r = self._in[0][8]  # my inbox's read seq (only I write it)
        self._ppid = os.getppid()

    def _channel(self, off):
        ctrl = self._mv[off:off + CTRL_BYTES].cast("q")
        slots, heads = [], []
        for k in range(self.nslots):
            s = off + CTRL_BYTES + k * (SLOT_HEADER + self.slot_bytes)
            heads.append(self._mv[s:s + SLOT_HEADER].cast("q"))
            slots.append(np.frombuffer(self._buf, np.uint8, self.slot_bytes, s + SLOT_HEADER))
        return ctrl, heads, slots

    def begin(self, op, seq):
        self.op = op
        self.header[HEADER_WORDS + self.rank] = seq

    # ---- the three transport calls used by ring.py ----
    def sendrecv(self, send, recv, op=None):
        self._stream(send, recv, op)

    def send(self, arr):
        self._stream(arr, None, None)

    def recv(self, arr, op=None):
        self._stream(None, arr, op)

    def _stream(self, send, recv, op):
        """Push `send` into my outbox and pull `recv` from my inbox, segment by segment, taking
        whichever can move; both directions progress, so a ring of these never deadlocks."""
        S, nslots = self.slot_bytes, self.nslots
        out_ctrl, out_heads, out_slots = self._out
        in_ctrl, in_heads, in_slots = self._in
        sb = send.view(np.uint8) if send is not None else None
        rb = recv.view(np.uint8) if recv is not None else None
        nsend = max(1, -(-sb.size // S)) if sb is not None else 0
        nrecv = max(1, -(-rb.size // S)) if rb is not None else 0
        dtype = recv.dtype if recv is not None else None
        i = j = idle = 0
        w, r = self._w, self._r
        while i < nsend or j < nrecv:
            moved = False
            if i < nsend and w - out_ctrl[8] < nslots:
                k = w % nslots
                seg = sb[i * S:(i + 1) * S]
                if seg.size:
                    np.copyto(out_slots[k][:seg.size], seg)
                head = out_heads[k]
                head[0], head[1], head[2] = seg.size, i == nsend - 1, sb.size
                i += 1
                w += 1
                out_ctrl[0] = w  # publish after the data
                moved = True
            if j < nrecv and in_ctrl[0] > r:
                k = r % nslots
                head = in_heads[k]
                if head[2] != rb.size or head[1] != (j == nrecv - 1):
                    self._mismatch(head[2], rb.size)
                nb = head[0]
                if nb:
                    dst, src = rb[j * S:j * S + nb], in_slots[k][:nb]
                    if op is None:
                        np.copyto(dst, src)
                    else:
                        dst = dst.view(dtype)
                        op(dst, src.view(dtype), out=dst)
                j += 1
                r += 1
                in_ctrl[8] = r  # free the slot after reading it
                moved = True
            if moved:
                idle = 0
            else:
                idle = self._backoff(idle, self.left if j < nrecv else self.right)
        self._w, self._r = w, r

    def _backoff(self, idle, peer):
        idle += 1
        if idle < POLLS_BEFORE_YIELD:
            return idle
        if idle == POLLS_BEFORE_YIELD:
            self._since = time.monotonic()
        self._check_abort()
        if idle & 15 == 0:
            waited = time.monotonic() - self._since
            if waited > self.timeout:
                self._timed_out(peer)
            if os.getppid() != self._ppid:
                raise CommError(f"{self.op} aborted on rank {self.rank}: the launcher died", op=self.op)
            self._sleep = 0.0002 if waited > SLEEP_AFTER else 0
        elif idle == POLLS_BEFORE_YIELD:
            self._sleep = 0
        time.sleep(self._sleep)  # 0: yield the core to the peer
        return idle

    def _check_abort(self):
        failed = self.header[2]
        if failed:
            rank, code, kind = failed - 1, self.header[3], self.header[4]
            raise CommError(f"{self.op} aborted on rank {self.rank}: rank {rank} {describe_exit(kind, code)}",
                            rank=rank, op=self.op)

    def _timed_out(self, peer):
        entered = [self.header[HEADER_WORDS + q] for q in range(self.size)]
        behind = min(range(self.size), key=lambda q: entered[q])
        if entered[behind] < entered[self.rank]:
            peer = behind  # the rank that never reached this collective, not just my neighbour
        raise CommError(f"{self.op} timed out after {self.timeout}s waiting for rank {peer} "
                        f"(rank {peer} may have died or stopped answering)", rank=peer, op=self.op)

    def _mismatch(self, sent, expected):
        raise CommError(f"{self.op}: rank {self.left} sent a {sent}-byte message but rank {self.rank} "
                        f"expected {expected} bytes (different sizes or dtypes on different ranks; "
                        f"set DISTBP_COMM_DEBUG=1 for a per-call check)", rank=self.left, op=self.op)

    def close(self):
        self._in = self._out = self.header = None
        try:  # views may still be alive (e.g. in a traceback); then the mapping goes with them
            self._mv.release()
            self._buf.close()
        except BufferError:
            pass


def describe_exit(kind, code):
    if kind == 1:
        return "raised an exception"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def mark_failed(buf_or_name, rank, kind, code):
    """Record the first failure in the header so every waiting rank stops at once."""
    buf = open_segment(buf_or_name) if isinstance(buf_or_name, str) else buf_or_name
    mv = memoryview(buf)
    header = mv[:HEADER_WORDS * 8].cast("q")
    if header[2] == 0:
        header[3], header[4] = code, kind
        header[2] = rank + 1
    header.release()
    mv.release()
    if isinstance(buf_or_name, str):
        buf.close()


class LocalCommunicator(Communicator):
    """A rank of a world started by distbp.comm.spawn (reads DISTBP_LOCAL_* from the environment)."""

    backend = "local"

    def __init__(self, timeout=None, debug=None):
        name = os.environ.get(ENV_NAME)
        if not name:
            raise CommError("init('local') must run in a worker started by distbp.comm.spawn "
                            f"({ENV_NAME} is not set); use init('auto') or init('single') otherwise")
        rank, size = int(os.environ[ENV_RANK]), int(os.environ[ENV_SIZE])
        if timeout is None:
            timeout = float(os.environ.get(ENV_TIMEOUT, 30.0))
        super().__init__(rank, size, timeout, debug)
        slot, nslots = int(os.environ[ENV_SLOT]), int(os.environ[ENV_NSLOTS])
        self.transport = ShmTransport(open_segment(name), rank, size, slot, nslots, self.timeout)
        if self.transport.header[0] != MAGIC or self.transport.header[1] != size:
            raise CommError(f"shared memory segment {name} is not a distbp world of size {size}")
