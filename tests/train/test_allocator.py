"""train.keep_heap: freed arrays stay in the heap, so a step's allocations stop page-faulting."""
import os
import platform
import resource
import subprocess
import sys

import pytest

from distbp.train.allocator import SETTINGS

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# A fresh interpreter runs 50 "steps" that, like a training step, allocate arrays of several sizes
# (1-8 MB of activations, 36 MB in all), touch them and free them all, then prints its minor page
# faults. By default glibc returns the freed top of the heap to the kernel (the trim threshold is
# twice the largest size seen), so every step faults its pages in again (~2800 faults per step here).
PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from distbp.train.allocator import keep_heap
    print(sorted(keep_heap()), file=sys.stderr)
def step():
    arrays = [np.ones(mb << 18, np.float32) for mb in (1, 2, 4, 8, 8, 4, 4, 2, 2, 1)]
    return sum(float(a[::4096].sum()) for a in arrays)
step()                                               # the first step faults either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode, extra=None):
    """-> (minor faults of 50 steps, what keep_heap applied); MALLOC_* only from `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in {var for _, var, _ in SETTINGS.values()}}
    env.update(extra or {})
    res = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True,
                         text=True, check=True)
    return int(res.stdout), res.stderr


@glibc
def test_keep_heap_stops_repeated_page_faults():
    default, _ = faults("default")
    kept, applied = faults("keep")
    assert default > 50 * 2000, default   # thousands of pages per step without it
    assert kept < 500, (kept, default)    # the heap keeps the pages: (almost) no new faults
    assert "mmap_threshold" in applied and "trim_threshold" in applied


@glibc
def test_a_malloc_variable_set_by_the_user_wins():
    _, applied = faults("keep", {"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert "mmap_threshold" not in applied and "trim_threshold" in applied


def test_keep_heap_is_a_config_key():
    from distbp.train.config import load_config
    assert load_config(None, [])["train"]["keep_heap"] is True
    assert load_config(None, ["train.keep_heap=false"])["train"]["keep_heap"] is False
