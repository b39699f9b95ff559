"""The promotion gate's criteria: one pluggable unit each (see ``base.GateCriterion``).

Add a criterion by writing a class with ``name``, ``enabled(spec)`` and
``judge(context)`` and listing it in :data:`DEFAULT_CRITERIA`; ``shadow gate``
and ``shadow watch`` both pick it up (the watch splits its alpha over the
enabled criteria).
"""

from __future__ import annotations

from shadowstream.analytics.criteria.agreement import AgreementCriterion, FloorCriterion
from shadowstream.analytics.criteria.base import (
    Criterion,
    GateContext,
    GateCriterion,
    QueryScope,
    Status,
    decide,
)
from shadowstream.analytics.criteria.failures import ErrorIncreaseCriterion, InvalidFormatCriterion
from shadowstream.analytics.criteria.latency import LATENCY_QUANTILE, LatencyCriterion
from shadowstream.analytics.criteria.slices import SliceCriterion

DEFAULT_CRITERIA: tuple[GateCriterion, ...] = (
    AgreementCriterion(),
    ErrorIncreaseCriterion(),
    LatencyCriterion(),
    InvalidFormatCriterion(),
    FloorCriterion(),
    SliceCriterion(),
)

__all__ = [
    "DEFAULT_CRITERIA",
    "LATENCY_QUANTILE",
    "AgreementCriterion",
    "Criterion",
    "ErrorIncreaseCriterion",
    "FloorCriterion",
    "GateContext",
    "GateCriterion",
    "InvalidFormatCriterion",
    "LatencyCriterion",
    "QueryScope",
    "SliceCriterion",
    "Status",
    "decide",
]
