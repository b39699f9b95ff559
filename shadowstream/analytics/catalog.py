"""What exists in the store, at any time: for errors that name it.

A challenger or experiment given on the command line that matches nothing is a
mistake (a typo, the wrong database), not "no comparisons yet": the CLI
raises :class:`NotFoundError` naming what exists. A challenger that is
configured but has no comparisons yet, or a batch run submitted but not yet
compared, does exist (it is waiting for data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shadowstream.analytics.queries import check_identifier
from shadowstream.core.errors import NotFoundError
from shadowstream.warehouse.client import Warehouse

_SHOWN = 20


@dataclass(frozen=True)
class Catalog:
    pairs: frozenset[tuple[str, str]]  # (experiment, challenger) with comparisons
    runs: frozenset[str]  # batch runs recorded by `shadow batch run`

    @property
    def experiments(self) -> set[str]:
        return {e for e, _ in self.pairs} | set(self.runs)

    @property
    def challengers(self) -> set[str]:
        return {c for _, c in self.pairs}


def load_catalog(warehouse: Warehouse) -> Catalog:
    db = check_identifier(warehouse.database)
    pairs = warehouse.query(
        f"SELECT experiment_id, challenger FROM {db}.comparisons_minute "
        "GROUP BY experiment_id, challenger"
    ).rows
    runs: list[tuple[object, ...]] = []
    has_runs = warehouse.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'experiments'",
        {"db": db},
    ).scalar()
    if has_runs:
        runs = warehouse.query(f"SELECT DISTINCT experiment_id FROM {db}.experiments").rows
    return Catalog(
        frozenset((str(e), str(c)) for e, c in pairs), frozenset(str(r[0]) for r in runs)
    )


def _known(names: Iterable[str]) -> str:
    ordered = sorted(set(names))
    if not ordered:
        return "none yet"
    more = f", ... ({len(ordered) - _SHOWN} more)" if len(ordered) > _SHOWN else ""
    return ", ".join(ordered[:_SHOWN]) + more


def check_selection(
    catalog: Catalog,
    experiment: str = "",
    challengers: Iterable[str] = (),
    configured: Iterable[str] = (),
) -> None:
    """Raise NotFoundError for an experiment or challenger that exists nowhere."""
    if experiment and experiment not in catalog.experiments:
        raise NotFoundError(
            f"no experiment {experiment!r} in the data or the batch runs "
            f"(known: {_known(catalog.experiments)})"
        )
    known = catalog.challengers | set(configured)
    missing = [c for c in challengers if c not in known]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        noun = "challenger" if len(missing) == 1 else "challengers"
        raise NotFoundError(f"no {noun} {names} in the data or the config (known: {_known(known)})")
