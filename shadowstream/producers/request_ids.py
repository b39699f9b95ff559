"""Request ids for the SDK: unique, in UUID layout, without a syscall per id."""

from __future__ import annotations

import itertools
import os
import random


class _RequestIds:
    """Unique request ids without a syscall per id.

    uuid4() reads os.urandom every time (~15 us on a VM); here a random
    per-process 64-bit prefix (renewed after fork) plus a counter gives ids
    that are just as unique, in UUID layout.
    """

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(random.getrandbits(32))

    def __call__(self) -> str:
        h = f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_request_id = _RequestIds()
