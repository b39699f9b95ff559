"""Where batch items come from: captured traffic in ClickHouse, or an eval file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shadowstream.core.errors import ExperimentError
from shadowstream.experiments.filters import ItemFilter
from shadowstream.experiments.sources.base import Source
from shadowstream.experiments.sources.captured import CapturedTraffic
from shadowstream.experiments.sources.evalfile import EvalFile, ItemDefaults
from shadowstream.warehouse.client import Warehouse

__all__ = ["CapturedTraffic", "EvalFile", "ItemDefaults", "Source", "source_from_spec"]


def source_from_spec(spec: Mapping[str, Any], warehouse: Warehouse) -> Source:
    """Rebuild the source a run was created with (its stored ``spec()``)."""
    kind = spec.get("kind")
    item_filter = ItemFilter.from_json(spec.get("filter") or {})
    if kind == "captured":
        return CapturedTraffic(warehouse, int(spec["since_us"]), int(spec["until_us"]), item_filter)
    if kind == "eval":
        return EvalFile(
            Path(spec["path"]),
            item_filter,
            ItemDefaults(str(spec["endpoint"]), str(spec["reference_model"])),
            expected_sha256=spec.get("sha256"),
        )
    raise ExperimentError(f"unknown source kind {kind!r} in the stored run")
