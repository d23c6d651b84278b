"""The local backend: N processes on one machine, linked by one shared-memory segment.

The launcher (launch.spawn) creates the segment (segment.py) and tells each worker where it is
through the DISTBP_LOCAL_* env vars; `init("local")` attaches a shm.ShmTransport to it.
"""
import os

from distbp.comm import shm
from distbp.comm.base import CommError, Communicator
from distbp.comm.segment import MAGIC, open_segment
# The local backend's defaults are its transport's (launch.spawn's arguments; train/cli.py checks
# DISTBP_COMM_SPIN_MS through spin_ms).
from distbp.comm.shm import DEFAULT_SLOT_BYTES, DEFAULT_SMALL_BYTES, default_nslots, spin_ms  # noqa: F401

ENV_NAME, ENV_RANK, ENV_SIZE = "DISTBP_LOCAL_SHM", "DISTBP_LOCAL_RANK", "DISTBP_LOCAL_SIZE"
ENV_SLOT, ENV_NSLOTS, ENV_TIMEOUT = "DISTBP_LOCAL_SLOT_BYTES", "DISTBP_LOCAL_NSLOTS", "DISTBP_COMM_TIMEOUT"
ENV_SMALL = "DISTBP_LOCAL_SMALL_BYTES"


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
        small = int(os.environ.get(ENV_SMALL, shm.DEFAULT_SMALL_BYTES))
        self.transport = shm.ShmTransport(open_segment(name), rank, size, slot, nslots,
                                          self.timeout, name, small)
        if self.transport.header[0] != MAGIC or self.transport.header[1] != size:
            raise CommError(f"shared memory segment {name} is not a distbp world of size {size}")
        self._start_heartbeat()
