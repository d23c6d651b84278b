"""How many cores the ranks may keep busy: affinity capped by a cgroup CPU quota (containers)."""
import os

import pytest

from distbp.comm import cpus, shm


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("text, quota", [("max 100000\n", 0.0), ("150000 100000\n", 1.5),
                                         ("100000 100000\n", 1.0), ("garbage\n", 0.0)])
def test_cgroup_v2_quota(tmp_path, text, quota):
    write(tmp_path / "cpu.max", text)
    assert cpus.cgroup_cpu_quota(str(tmp_path)) == quota


@pytest.mark.parametrize("quota_us, quota", [("-1\n", 0.0), ("50000\n", 0.5), ("250000\n", 2.5)])
def test_cgroup_v1_quota(tmp_path, quota_us, quota):
    for ctrl in ("cpu", "cpu,cpuacct"):      # whichever directory the system mounts
        write(tmp_path / ctrl / "cpu.cfs_quota_us", quota_us)
        write(tmp_path / ctrl / "cpu.cfs_period_us", "100000\n")
    assert cpus.cgroup_cpu_quota(str(tmp_path)) == quota


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cpus.cgroup_cpu_quota(str(tmp_path)) == 0.0


def test_usable_cpus_is_the_affinity_capped_by_the_quota():
    cores = {0, 1, 2, 3}
    assert cpus.usable_cpus(cores, quota=0.0) == 4      # no quota: the affinity
    assert cpus.usable_cpus(cores, quota=1.5) == 2      # 1.5 CPUs of time keep 2 ranks going
    assert cpus.usable_cpus(cores, quota=1.0) == 1
    assert cpus.usable_cpus(cores, quota=8.0) == 4
    assert cpus.usable_cpus({0}, quota=0.25) == 1
    # this machine: at most its affinity
    assert 1 <= cpus.usable_cpus() <= len(os.sched_getaffinity(0))


def test_a_quota_makes_ranks_oversubscribed(monkeypatch):
    """Two ranks in a container limited to 1 CPU must not busy-wait for each other."""
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda root=None: 1.0)
    assert shm.oversubscribed(2)
    assert shm.default_nslots(2) == shm.NSLOTS_OVERSUBSCRIBED
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda root=None: 0.0)
    assert shm.oversubscribed(2) == (len(os.sched_getaffinity(0)) < 2)
