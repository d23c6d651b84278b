"""The shared comm test body on a HierarchicalCommunicator, under mpiexec:

    DISTBP_HIER_FAKE_HOSTS=2 mpiexec -n 4 python -m tests.comm.hier_worker   # 2 fake hosts x 2
    (across launch/netns_hosts.sh's hosts the host keys differ by themselves)

DISTBP_HIER_FAKE_HOSTS=H gives rank r the host key "fake-{r * H // size}" (DISTBP_HOST), so one
machine can stand for H hosts. Prints `OK {json}` per rank (summary, transports, identical-bits
digest and the measured all-reduce bytes) or `FAIL ...` and exits 1.
"""
import hashlib
import json
import os
import sys
import traceback

import numpy as np


def main():
    from mpi4py import MPI
    fake = int(os.environ.get("DISTBP_HIER_FAKE_HOSTS", "0"))
    if fake:
        w = MPI.COMM_WORLD
        os.environ["DISTBP_HOST"] = f"fake-{w.Get_rank() * fake // w.Get_size()}"
    import distbp.comm
    from distbp.comm.hierarchical import HierarchicalCommunicator
    from tests.comm import bodies
    comm = distbp.comm.init("mpi")
    try:
        want_wrapped = os.environ.get("DISTBP_HIER_EXPECT", "wrapped") == "wrapped"   # or "flat"
        assert isinstance(comm, HierarchicalCommunicator) == want_wrapped, f"wrapped? {comm!r}"
        body = os.environ.get("DISTBP_HIER_BODY", "1") == "1"     # 0: the big all-reduces only
        summary = bodies.run_all(comm) if body else {}
        x = np.random.default_rng(comm.rank).standard_normal(3_000_001).astype(np.float32)
        for _ in range(int(os.environ.get("DISTBP_HIER_REPEAT", "1"))):
            x[...] = np.random.default_rng(comm.rank).standard_normal(x.size)
            comm.allreduce(x)          # above MIN_BYTES: the two-level path, float rounding
        digest = hashlib.sha256(x.tobytes()).hexdigest()
        want = sum(np.random.default_rng(r).standard_normal(3_000_001).astype(np.float64)
                   for r in range(comm.size))
        assert np.allclose(x, want, rtol=1e-4, atol=1e-4)
        print("OK " + json.dumps({"summary": summary, "digest": digest,
                                  "local": getattr(comm, "local", comm).size,
                                  "cross": getattr(comm, "cross", comm).size,
                                  "transport": comm.transport_name}), flush=True)
    except Exception:
        print("FAIL " + traceback.format_exc().replace("\n", " | "), flush=True)
        sys.exit(1)
    finally:
        comm.close()


if __name__ == "__main__":
    main()
