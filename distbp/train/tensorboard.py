"""TensorBoard event files written with the standard library alone (no TensorFlow, no PyTorch, no
protobuf): `tensorboard --logdir runs/` shows the curves while a run is going.

    w = SummaryWriter("runs/mine/tensorboard")     # the names of torch.utils.tensorboard's writer
    w.add_scalar("train/loss", 0.42, global_step=20)
    w.close()

An event file is a TFRecord stream: each record is u64 length, u32 masked CRC-32C of the length,
the bytes, u32 masked CRC-32C of the bytes (all little-endian). Each record is an `Event`
protobuf: wall_time (field 1, double), step (2, varint), file_version (3, string) or summary (5:
`Summary` of repeated `Value` {tag (1, string), simple_value (2, float)}). The writer encodes just
those fields; `distbp[tensorboard]` installs TensorBoard to view them.
"""
import os
import socket
import struct
import time
from pathlib import Path


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1     # Castagnoli, reflected
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data):
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc(length)) + data
            + struct.pack("<I", masked_crc(data)))


# -- the few protobuf fields an Event needs ---------------------------------------------------------
def _varint(n):
    n &= (1 << 64) - 1                    # int64: negatives as two's complement, 10 bytes
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_bytes(number, payload):        # wire type 2: length-delimited
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event(wall_time, step=None, file_version=None, scalars=None):
    """The bytes of one Event protobuf."""
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time)
    if step is not None:
        out += _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5)
                         + struct.pack("<f", float(value)))
            for tag, value in scalars.items())
        out += _field_bytes(5, values)
    return out


class SummaryWriter:
    """Scalars into log_dir/events.out.tfevents.<time>.<host>.<pid>, flushed after every event so
    TensorBoard sees them during the run. A resumed run adds a new file to the same directory."""

    def __init__(self, log_dir, filename_suffix=""):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}{filename_suffix}"
        self.path = self.log_dir / name
        self._file = open(self.path, "ab")
        self._write(event(now, file_version="brain.Event:2"))

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None):
        self.add_scalar_dict({tag: scalar_value}, global_step, walltime)

    def add_scalar_dict(self, values, global_step=None, walltime=None):
        """Several scalars of one step in one event (a training record's loss, lr, norms...)."""
        if values:
            self._write(event(time.time() if walltime is None else walltime, global_step,
                              scalars=values))

    def _write(self, data):
        if self._file is None:
            raise ValueError(f"SummaryWriter for {self.log_dir} is closed")
        self._file.write(tfrecord(data))
        self._file.flush()

    def flush(self):
        if self._file is not None:
            self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
