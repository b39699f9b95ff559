"""A thread pool whose threads never keep the process alive.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter
exit, so one challenger call that hangs forever would hang the worker's
shutdown too. Challenger calls run here instead: daemon threads, abandoned at
exit. (A hung call cannot be interrupted in Python; the runtime stops waiting
for it at the timeout.)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

_STOP = object()


class PoolSaturatedError(RuntimeError):
    """Every thread is busy and the queue is full (typically: calls that never return)."""


class DaemonThreadPool(Executor):
    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str = "daemon-pool",
        max_queued: int | None = None,
    ) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_workers = max(1, max_workers)
        # bound the backlog: with every thread stuck, fail fast instead of queueing forever
        self._max_queued = max_queued if max_queued is not None else 4 * self._max_workers
        self._prefix = thread_name_prefix
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        if self._queue.qsize() >= self._max_queued and self._idle == 0:
            self._drop_cancelled()
            if self._queue.qsize() >= self._max_queued:
                raise PoolSaturatedError(
                    f"all {len(self._threads)} threads are busy and {self._queue.qsize()} calls "
                    "are waiting (are calls hanging?)"
                )
        future: Future[T] = Future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        self._queue.put((future, fn, args, kwargs))
        return future

    def _drop_cancelled(self) -> None:
        """Forget queued calls whose callers gave up (timed out) before they started."""
        keep = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP or not item[0].cancelled():
                keep.append(item)
        for item in keep:
            self._queue.put(item)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].cancel()
        for _ in self._threads:
            self._queue.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
