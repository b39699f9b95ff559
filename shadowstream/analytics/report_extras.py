"""The report's measures, resources and projection sections, filled in one call.

Kept apart from ``report.py`` so the core report stays small: ``build_report``
calls :func:`fill_extras` once the per-challenger counts are known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shadowstream.analytics.measures import fetch_measure_slices, fetch_measures
from shadowstream.analytics.projection import fetch_projections
from shadowstream.analytics.queries import Scope
from shadowstream.analytics.resources import (
    ResourceOptions,
    fetch_resource_sides,
    fetch_resource_slices,
    resource_rows,
)

if TYPE_CHECKING:
    from shadowstream.analytics.model import Counts, Report

Runner = Callable[[str, Callable[[], Any]], Any]


def fill_extras(
    report: Report,
    scope: Scope,
    names: list[str],
    counts: Sequence[Counts],
    resources: ResourceOptions,
    run: Runner,
) -> None:
    """Measures (overall and per slice), resources (overall and per slice), projections."""
    confidence = report.confidence
    report.measures = run("measures", lambda: fetch_measures(scope, names, confidence))
    totals = {(m.experiment_id, m.challenger, m.measure): m for m in report.measures}
    if report.measures:
        report.measure_slices = run(
            "measure slices",
            lambda: fetch_measure_slices(
                scope, names, totals, confidence, resources.min_slice_n, resources.slices_per_metric
            ),
        )
    sides = run("resources", lambda: fetch_resource_sides(scope, names))
    report.resources = resource_rows(sides, resources, confidence)
    if not sides:
        return
    report.resource_slices = run(
        "resource slices",
        lambda: fetch_resource_slices(scope, names, resources, confidence, sides),
    )
    comparisons = {(c.experiment_id, c.challenger): c.comparisons for c in counts}
    report.projections = run(
        "projection",
        lambda: fetch_projections(scope, names, sides, comparisons, resources, confidence),
    )
