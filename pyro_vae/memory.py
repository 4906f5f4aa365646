"""The process's memory allocator: keep freed blocks for the next pass instead of handing them back.

A pass of the importance-sampled estimator allocates and frees some tens of MB of tensors. With
glibc's defaults, ``free`` returns the top of the heap to the operating system as soon as more than
twice the largest block freed so far lies unused there, so the next pass page-faults the same memory
back in and the kernel zeroes it again; in a virtual machine each of those faults may also go to the
host. PyTorch's CPU performance guide recommends jemalloc or tcmalloc for this reason; here glibc
is asked for the same behaviour from inside the process (``mallopt``). The price: up to
``trim_threshold`` bytes of freed memory stay with the process (its peak does not change).
``benchmarks/loglik_throughput.py`` measures the estimator with and without it, each in a fresh process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_applied: bool | None = None


def keep_freed_memory(trim_threshold: int = 256 << 20, mmap_threshold: int = 32 << 20) -> bool:
    """Keeps up to ``trim_threshold`` bytes of freed heap for reuse and serves blocks up to
    ``mmap_threshold`` (glibc's own ceiling, 32 MiB on 64-bit) from the heap, not from fresh pages.

    Once per process (later calls return the first answer); True where glibc accepted both settings,
    False elsewhere (another C library, or ``PYRO_VAE_MALLOC=default`` in the environment).
    """
    global _applied
    if _applied is None:
        _applied = _mallopt(trim_threshold, mmap_threshold)
    return _applied


def _mallopt(trim_threshold: int, mmap_threshold: int) -> bool:
    if os.environ.get("PYRO_VAE_MALLOC") == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    # either setting alone would also switch off glibc's adaptive thresholds and leave the other at 128 KiB
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
