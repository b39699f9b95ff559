"""Where a process's memory is: Python objects, the C heap, and what the C heap keeps.

Served under ``process`` in every worker's ``/metrics``. RSS alone cannot tell a
leak in Python state from librdkafka's buffers or from freed memory that malloc
keeps for reuse; these numbers can.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # non-mmapped space allocated from the system
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # space in mmapped regions
            "usmblks",
            "fsmblks",
            "uordblks",  # total allocated space
            "fordblks",  # total free space
            "keepcost",
        )
    ]


def _libc_function(symbol: str) -> Any:
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(name), symbol)
    except (OSError, AttributeError):
        return None


_MALLINFO2 = _libc_function("mallinfo2")  # glibc >= 2.33
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _MallInfo2
    _MALLINFO2.argtypes = []

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MB = 1024 * 1024


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def memory_snapshot() -> dict[str, Any]:
    """RSS, Python's allocated blocks, and (glibc) the C heap in use / held free, in MB.

    The heap figures are glibc's ``mallinfo2()`` over all arenas (librdkafka's and
    chDB's buffers, large Python objects); small Python objects live in pymalloc's
    own arenas and show as ``python_blocks``.
    """
    out: dict[str, Any] = {"python_blocks": sys.getallocatedblocks()}
    rss = rss_bytes()
    if rss is not None:
        out["rss_mb"] = round(rss / MB, 1)
    if _MALLINFO2 is not None:
        info = _MALLINFO2()
        out["heap_in_use_mb"] = round((info.uordblks + info.hblkhd) / MB, 1)
        out["heap_free_mb"] = round(info.fordblks / MB, 1)
    return out
