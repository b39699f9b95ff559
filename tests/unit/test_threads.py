"""Challenger calls run on daemon threads: a hung call cannot block shutdown."""

from __future__ import annotations

import subprocess
import sys
import time

from shadowstream.runtime.threads import DaemonThreadPool


def test_results_and_exceptions_are_delivered() -> None:
    pool = DaemonThreadPool(2)
    assert pool.submit(lambda x: x * 2, 21).result(timeout=5) == 42
    failing = pool.submit(lambda: 1 / 0)
    try:
        failing.result(timeout=5)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("expected ZeroDivisionError")
    pool.shutdown()


def test_pool_never_exceeds_its_size() -> None:
    pool = DaemonThreadPool(3)
    futures = [pool.submit(time.sleep, 0.05) for _ in range(12)]
    for future in futures:
        future.result(timeout=5)
    assert len(pool._threads) <= 3
    pool.shutdown()


def test_a_hung_call_does_not_keep_the_process_alive() -> None:
    code = (
        "import time\n"
        "from shadowstream.runtime.threads import DaemonThreadPool\n"
        "DaemonThreadPool(1).submit(time.sleep, 3600)\n"
        "print('bye')\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "bye"
    assert time.monotonic() - started < 10


def test_a_pool_whose_threads_are_stuck_fails_fast_instead_of_queueing_forever() -> None:
    import threading

    import pytest

    from shadowstream.runtime.threads import PoolSaturatedError

    release = threading.Event()
    pool = DaemonThreadPool(2, max_queued=3)
    stuck = [pool.submit(release.wait) for _ in range(2)]
    deadline = time.monotonic() + 5
    while pool._queue.qsize() and time.monotonic() < deadline:  # both threads picked one up
        time.sleep(0.01)
    queued = [pool.submit(release.wait) for _ in range(3)]
    with pytest.raises(PoolSaturatedError):
        pool.submit(release.wait)
    # callers that gave up free their queue slots
    for future in queued:
        future.cancel()
    pool.submit(lambda: None).cancel()
    release.set()
    for future in stuck:
        future.result(timeout=5)
    pool.shutdown()
