"""The memory figures in /metrics."""

from __future__ import annotations

import sys

import pytest

from shadowstream.runtime.memory import memory_snapshot

glibc_only = pytest.mark.skipif(
    "heap_in_use_mb" not in memory_snapshot(), reason="needs glibc's mallinfo2"
)


def test_the_snapshot_separates_python_objects_from_the_c_heap() -> None:
    before = memory_snapshot()
    assert before["python_blocks"] > 0
    if sys.platform.startswith("linux"):
        assert before["rss_mb"] > 0
    objects = [object() for _ in range(200_000)]
    assert memory_snapshot()["python_blocks"] >= before["python_blocks"] + 200_000
    del objects


@glibc_only
def test_freed_c_heap_shows_as_held_free_not_in_use() -> None:
    # 2 KB buffers come from malloc (pymalloc takes only <= 512 B); keeping every
    # tenth one pins the heap, so glibc keeps the rest for reuse: RSS stays up
    buffers = [bytearray(2048) for _ in range(60_000)]
    grown = memory_snapshot()
    kept = buffers[::10]
    del buffers
    freed = memory_snapshot()
    assert grown["heap_in_use_mb"] > freed["heap_in_use_mb"] + 60
    assert freed["heap_free_mb"] > 60
    assert freed["rss_mb"] > grown["rss_mb"] - 20
    assert len(kept) == 6_000
