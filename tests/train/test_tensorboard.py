"""distbp's own TensorBoard writer, read back by TensorBoard's reader."""
import struct

import pytest

from distbp.train.tensorboard import SummaryWriter, crc32c, masked_crc

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283        # the CRC-32C check value (RFC 3720)
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA           # RFC 3720 B.4: 32 bytes of zeros


def test_scalars_read_back_by_tensorboard(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(5):
            w.add_scalar("train/loss", 1.0 / (step + 1), global_step=step, walltime=100.0 + step)
        w.add_scalar_dict({"eval/accuracy": 0.9, "grad_norm/0.weight": 3.5}, global_step=2**40)
        w.add_scalar("train/lr", -0.5, global_step=-1)
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"train/loss", "eval/accuracy", "grad_norm/0.weight",
                                          "train/lr"}
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(5))
    assert [e.wall_time for e in loss] == [100.0 + s for s in range(5)]
    assert [e.value for e in loss] == pytest.approx([1.0 / (s + 1) for s in range(5)])
    assert acc.Scalars("grad_norm/0.weight")[0].step == 2**40
    assert acc.Scalars("train/lr")[0].value == -0.5 and acc.Scalars("train/lr")[0].step == -1


def test_records_are_framed_and_checksummed(tmp_path):
    w = SummaryWriter(tmp_path)
    w.add_scalar("x", 1.0, global_step=1)
    w.close()
    data = w.path.read_bytes()
    pos, records = 0, 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        assert struct.unpack_from("<I", data, pos + 8)[0] == masked_crc(data[pos:pos + 8])
        body = data[pos + 12:pos + 12 + n]
        assert struct.unpack_from("<I", data, pos + 12 + n)[0] == masked_crc(body)
        pos += 16 + n
        records += 1
    assert records == 2 and b"brain.Event:2" in data       # the version record, then the scalar
    with pytest.raises(ValueError, match="closed"):
        w.add_scalar("x", 2.0)
