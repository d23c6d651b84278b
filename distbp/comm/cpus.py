"""How many cores a job's processes can keep busy: the CPU affinity, capped by a cgroup's CPU quota.

os.cpu_count() counts the machine and sched_getaffinity() the cores a process may run on, but a
container limited with --cpus (or a Kubernetes CPU limit) gets only a share of time on them, which
neither shows. The comm layer decides from this count whether ranks outnumber cores (then a waiting
rank gives its core away at once), and the trainer how many BLAS threads each worker gets.
"""
import math
import os


def usable_cpus(cores=None, quota=None):
    """Cores this process can keep busy: its affinity (or `cores`, a set of core ids), capped by
    the cgroup's CPU quota (a container's --cpus, a Kubernetes limit), which affinity does not
    show. Ranks that spin on a 1-CPU quota would spend it waiting."""
    n = len(os.sched_getaffinity(0) if cores is None else cores)
    quota = cgroup_cpu_quota() if quota is None else quota
    return max(1, min(n, math.ceil(quota))) if quota else n


def cgroup_cpu_quota(root="/sys/fs/cgroup"):
    """CPUs' worth of time per period this process's cgroup may use (quota / period; 1.5 for
    --cpus=1.5), or 0.0 when it is unlimited or unknown. cgroup v2 (cpu.max) and v1 (cfs_quota)."""
    try:
        with open("/proc/self/cgroup") as f:
            mine = dict(line.rstrip("\n").split(":", 2)[1:] for line in f if line.count(":") >= 2)
    except OSError:
        mine = {}
    v2 = [os.path.join(root, mine.get("", "/").lstrip("/"), "cpu.max"), os.path.join(root, "cpu.max")]
    for path in v2:
        try:
            with open(path) as f:
                quota, period = f.read().split()[:2]
            return 0.0 if quota == "max" else int(quota) / int(period)
        except (OSError, ValueError):
            continue
    for ctrl in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for sub in dict.fromkeys((mine.get(ctrl, "/").lstrip("/"), "")):   # mine first, then the root
            d = os.path.join(root, ctrl, sub)
            try:
                with open(os.path.join(d, "cpu.cfs_quota_us")) as f:
                    quota = int(f.read())
                with open(os.path.join(d, "cpu.cfs_period_us")) as f:
                    period = int(f.read())
            except (OSError, ValueError):
                continue
            return quota / period if quota > 0 and period > 0 else 0.0
    return 0.0
