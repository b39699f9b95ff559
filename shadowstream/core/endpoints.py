"""Which endpoints a rule covers: ``shadow_endpoints``, ``write_endpoints`` and a
challenger's ``endpoints`` are glob patterns (fnmatch, case-sensitive).

Shared by the router's fan-out and by batch experiments, which must refuse
exactly what the router refuses (a write endpoint is never shadowed).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable


def endpoint_matches(endpoint: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(endpoint, p) for p in patterns)
