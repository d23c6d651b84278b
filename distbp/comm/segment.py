"""The shared-memory segment of a world on one node: its layout, its header, its failure record.

Made by the local launcher (launch.spawn) or by rank 0 of an MPI world on one node (mpi.py); used
by shm.ShmTransport. Layout (offsets 64-byte aligned; the header is int64 words):

    global   [0] magic, [1] size, [2] failed rank + 1 (0: none), [3] exit code or -signal,
             [4] failure kind (KINDS), [5] reporting rank + 1 (its message area holds the reason)
    rank r   block at word HEADER_WORDS + r * RANK_WORDS, written by rank r only (read by all):
             R_* words: collectives entered and completed, waiting flags, sync count, the
             symmetric-memory descriptor, heartbeat counter, start of the current collective (ns)
             HISTORY entries: the last calls, entry seq % HISTORY: (seq, op, dtype, count, extra,
             start ns, end ns, tag bytes), tag text in TAG_BYTES at TAGS
             a MESSAGE_BYTES message area (the one-line reason of a failure it reports)
    channel r  (rank r's outbox, read only by rank r+1): ctrl words [0] write seq (written by r),
             [8] read seq (written by r+1), then `nslots` slots of (64-byte header, slot_bytes payload)
    mailboxes  size * ntags of them, for ring.allreduce_small: mailbox (dst, tag) has ctrl words
             [0] generation, [1 + g % 2] bytes of generation g (written by its one sender), then 2
             buffers of small_bytes (generation g in buffer g % 2)

Each rank's words sit in its own block, so ranks never write to the same cache line.
"""
import mmap
import os
import signal

MAGIC = 0x64697374627021
HEADER_WORDS = 64
G_FAILED, G_CODE, G_KIND, G_REPORTER = 2, 3, 4, 5
KINDS = {1: "raised", 2: "exited", 3: "reported", 4: "stalled"}
RAISED, EXITED, REPORTED, STALLED = 1, 2, 3, 4
# Per-rank words (offsets in the rank's block)
R_ENTERED, R_COMPLETED, R_WAITING, R_WANT_DATA, R_WANT_SPACE, R_SYNCED = 0, 1, 2, 3, 4, 5
R_DESC, R_BEAT, R_START = 6, 9, 10          # R_DESC: 3 words (allocation, offset, bytes)
HISTORY, ENTRY_WORDS, HIST = 16, 8, 16
TAG_BYTES = 64
TAGS = HIST + HISTORY * ENTRY_WORDS         # word offset of the tag texts
MESSAGE = TAGS + HISTORY * TAG_BYTES // 8   # word offset of the message area
MESSAGE_BYTES = 1024
RANK_WORDS = 512
CTRL_BYTES = 128
SLOT_HEADER = 64
MAILBOX_HEADER = 64
assert MESSAGE + MESSAGE_BYTES // 8 <= RANK_WORDS


def _round(n, to=4096):
    return -(-n // to) * to


def rank_word(rank, word):
    return HEADER_WORDS + rank * RANK_WORDS + word


def ntags(size):
    """Mailboxes per rank: one per recursive-doubling step, plus one for the fold-in of the ranks
    beyond the largest power of two (ring.allreduce_small)."""
    return size.bit_length()


def layout(size, slot_bytes, nslots, small_bytes):
    """(header bytes, channel bytes, mailbox bytes, total bytes) of a world."""
    header = _round((HEADER_WORDS + size * RANK_WORDS) * 8)
    channel = _round(CTRL_BYTES + nslots * (SLOT_HEADER + slot_bytes))
    mailbox = MAILBOX_HEADER + 2 * _round(small_bytes, 64)
    return header, channel, mailbox, header + size * channel + size * ntags(size) * mailbox


def bell_path(name, rank):
    """Rank `rank`'s doorbell: a FIFO next to the segment (see shm.py, waiting)."""
    return f"/dev/shm/{name}.bell{rank}"


def open_segment(name):
    """Map an existing segment by name (without multiprocessing's resource tracker, which would
    unlink it when the first worker exits: its creator owns and unlinks it)."""
    fd = os.open(f"/dev/shm/{name}", os.O_RDWR)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def write_text(mv, word, text, nbytes):
    """Store `text` (truncated to nbytes - 1 UTF-8 bytes, NUL-terminated) at header word `word`."""
    data = text.encode()[:nbytes - 1] + b"\0"
    mv[word * 8:word * 8 + len(data)] = data


def read_text(mv, word, nbytes):
    raw = bytes(mv[word * 8:word * 8 + nbytes])
    return raw.split(b"\0", 1)[0].decode(errors="ignore")


def mark_failed(buf_or_name, rank, kind, code, message=None, reporter=None):
    """Record the first failure in the header so every waiting rank stops at once. kind REPORTED:
    `reporter` (a rank) found it and wrote `message`, the one-line reason, in its block."""
    buf = open_segment(buf_or_name) if isinstance(buf_or_name, str) else buf_or_name
    mv = memoryview(buf)
    header = mv[:HEADER_WORDS * 8].cast("q")
    if header[G_FAILED] == 0:
        if message is not None:
            write_text(mv, rank_word(reporter, MESSAGE), message, MESSAGE_BYTES)
            header[G_REPORTER] = reporter + 1
        header[G_CODE], header[G_KIND] = code, kind
        header[G_FAILED] = rank + 1
    header.release()
    mv.release()
    if isinstance(buf_or_name, str):
        buf.close()


def failure(mv, header):
    """(failed rank, one-line description) of the recorded failure, or None."""
    failed = header[G_FAILED]
    if not failed:
        return None
    rank, code, kind = failed - 1, header[G_CODE], header[G_KIND]
    if kind in (REPORTED, STALLED) and header[G_REPORTER]:
        reporter = header[G_REPORTER] - 1
        return rank, read_text(mv, rank_word(reporter, MESSAGE), MESSAGE_BYTES)
    return rank, f"rank {rank} {describe_exit(kind, code)}"


def describe_exit(kind, code):
    if kind == RAISED:
        return "raised an exception"
    if kind == STALLED:
        return f"stopped answering (no heartbeat for {code} s)"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
