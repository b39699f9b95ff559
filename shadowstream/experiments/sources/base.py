"""The source protocol: count the items, then yield them in pages, in a stable order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from shadowstream.experiments.items import BatchItem


class Source(Protocol):
    """Where a run's items come from.

    ``spec()`` is everything needed to rebuild the same source later (stored
    with the run, so ``--resume`` replays exactly the same items in the same
    order); ``pages()`` must yield the same items every time.
    """

    @property
    def kind(self) -> str: ...

    def describe(self) -> str: ...

    def spec(self) -> dict[str, Any]: ...

    def count(self) -> int: ...

    def pages(self, page_size: int = 2_000) -> Iterator[list[BatchItem]]: ...
