"""Which host a rank runs on, and an address of it the other hosts can reach.

    key = host_key()                 # ranks with equal keys share a host (hierarchical.py groups them)
    addr = reachable_address(comm)   # rank 0's address for a TCP rendezvous (the gloo peer of bench)

A host is a (hostname, boot id, network namespace): two network namespaces on one machine are two
hosts (launch/netns_hosts.sh), although they share memory and, without launch/netns_hosts.sh's UTS
namespaces, a host name. DISTBP_HOST overrides the key (e.g. containers on one machine).
"""
import fcntl
import os
import socket
import struct

ENV_HOST = "DISTBP_HOST"
SIOCGIFADDR = 0x8915


def host_key():
    if os.environ.get(ENV_HOST):
        return os.environ[ENV_HOST]
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        netns = os.readlink("/proc/self/ns/net")
    except OSError:             # not Linux: the host name alone
        boot = netns = ""
    return f"{socket.gethostname()}/{boot}/{netns}"


def ipv4_addresses():
    """[(interface, address)]: this network namespace's IPv4 addresses other than loopback, in
    interface index order."""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in sorted(socket.if_nameindex(), key=lambda x: x[1]):
            try:
                req = struct.pack("256s", name.encode()[:15])
                addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24])
            except OSError:     # an interface without an IPv4 address
                continue
            if not addr.startswith("127."):
                out.append((name, addr))
    return out


def reachable_address(comm):
    """An address of rank 0 every rank can connect to (collective): MASTER_ADDR if set, 127.0.0.1
    when every rank shares rank 0's host, else rank 0's first non-loopback IPv4 address."""
    if os.environ.get("MASTER_ADDR"):
        return os.environ["MASTER_ADDR"]
    keys = comm.allgather_object(host_key())
    if all(k == keys[0] for k in keys):
        return "127.0.0.1"
    addrs = comm.broadcast_object([a for _, a in ipv4_addresses()] if comm.rank == 0 else None)
    if not addrs:
        raise RuntimeError("rank 0 has no IPv4 address other than loopback, and the ranks run on "
                           "several hosts: set MASTER_ADDR to an address of rank 0's host")
    return addrs[0]


def interface():
    """The interface of this host's first non-loopback IPv4 address (None: only loopback)."""
    found = ipv4_addresses()
    return found[0][0] if found else None
