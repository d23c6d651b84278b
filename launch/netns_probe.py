"""Measure a link between two namespace hosts: TCP round trip and rate (launch/netns_hosts.sh measure).

    python launch/netns_probe.py server 10.213.0.2 5201            # in host 1 (ends after one client)
    python launch/netns_probe.py client 10.213.0.2 5201 --mb 64    # in host 0: prints one JSON line

Round trip: median (and 10th/90th percentile) of 1-byte TCP_NODELAY ping-pongs. Rate: MB sent one
way, timed from the first byte to the receiver's acknowledgement of the last. The client also reads
its interface's tx_bytes before and after (bytes counted on the interface). Every wait has a timeout
and every loop a bound, so a dead link ends the probe with an error instead of a hang.
"""
import argparse
import json
import socket
import sys
import time

CHUNK = 1 << 20
TIMEOUT = 30.0


def tx_bytes(iface):
    with open(f"/sys/class/net/{iface}/statistics/tx_bytes") as f:
        return int(f.read())


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("peer closed the connection")
        buf += part
    return bytes(buf)


def server(addr, port):
    with socket.create_server((addr, port)) as srv:
        srv.settimeout(TIMEOUT)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pings, nbytes = (int(x) for x in recv_exact(conn, 32).split())
            for _ in range(pings):
                conn.sendall(recv_exact(conn, 1))
            got = 0
            while got < nbytes:
                part = conn.recv(min(CHUNK, nbytes - got))
                if not part:
                    raise ConnectionError("client closed during the rate test")
                got += len(part)
            conn.sendall(b"k")


def client(addr, port, pings, mb, iface):
    nbytes = int(mb * 1e6)
    deadline = time.monotonic() + TIMEOUT
    while True:                                 # the server may not be listening yet
        try:
            sock = socket.create_connection((addr, port), timeout=TIMEOUT)
            break
        except (ConnectionRefusedError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"{pings} {nbytes}".ljust(32).encode())
        rtts = []
        for _ in range(pings):
            t0 = time.perf_counter()
            sock.sendall(b"p")
            recv_exact(sock, 1)
            rtts.append(time.perf_counter() - t0)
        before = tx_bytes(iface)
        payload = b"\0" * CHUNK
        t0 = time.perf_counter()
        sent = 0
        while sent < nbytes:
            n = min(CHUNK, nbytes - sent)
            sock.sendall(payload[:n])
            sent += n
        recv_exact(sock, 1)
        seconds = time.perf_counter() - t0
        after = tx_bytes(iface)
    rtts.sort()
    q = lambda f: rtts[min(len(rtts) - 1, int(f * len(rtts)))] * 1e6
    return {"rtt_us_median": q(0.5), "rtt_us_p10": q(0.1), "rtt_us_p90": q(0.9),
            "rate_gbit": nbytes * 8 / seconds / 1e9, "bytes_sent": nbytes,
            "iface_tx_bytes": after - before, "iface": iface}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--pings", type=int, default=2000)
    p.add_argument("--mb", type=float, default=64)
    p.add_argument("--iface", default="eth0")
    args = p.parse_args(argv)
    if args.role == "server":
        server(args.addr, args.port)
    else:
        print(json.dumps(client(args.addr, args.port, args.pings, args.mb, args.iface)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
