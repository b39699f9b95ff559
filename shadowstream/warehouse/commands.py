"""The writes the chDB owner endpoint will run for another process: its own, by name.

A process that does not own the chDB directory (``shadow batch run``,
``shadow db migrate`` while the pipeline runs) cannot send SQL to write:
it names one of the commands registered here, with bound parameters, and the
owner runs its own copy of the statement. Queries are read-only there
(ClickHouse ``readonly``); anything else is refused.

* :func:`write_statement` registers one parameterised SQL write (``{db}`` is
  replaced by the database) and returns it; code runs it with
  ``warehouse.command(statement.sql(db), parameters)`` whichever warehouse it
  has, and the remote one sends the name instead of the text.
* :func:`owner_procedure` registers a function run in the owner process
  (``migrate``), called remotely with :meth:`RemoteWarehouse.call`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shadowstream.core.errors import WarehouseError

if TYPE_CHECKING:
    from shadowstream.warehouse.client import Warehouse

Procedure = Callable[["Warehouse", Mapping[str, Any]], Any]


@dataclass(frozen=True)
class WriteStatement:
    name: str
    template: str  # SQL with {db} for the database and {name:Type} parameters

    def sql(self, database: str) -> str:
        return self.template.replace("{db}", database)


_STATEMENTS: dict[str, WriteStatement] = {}
_PROCEDURES: dict[str, Procedure] = {}


def write_statement(name: str, template: str) -> WriteStatement:
    """Register (idempotently) a write the owner endpoint may run by name."""
    existing = _STATEMENTS.get(name)
    if existing is not None and existing.template != template:
        raise WarehouseError(f"two different write statements named {name!r}")
    statement = WriteStatement(name, template)
    _STATEMENTS[name] = statement
    return statement


def owner_procedure(name: str) -> Callable[[Procedure], Procedure]:
    """Decorator: a function the owner runs on its own warehouse when asked by name."""

    def register(fn: Procedure) -> Procedure:
        _PROCEDURES[name] = fn
        return fn

    return register


def statement_named(sql: str, database: str) -> WriteStatement | None:
    """The registered statement whose text (for this database) is exactly ``sql``."""
    for statement in _STATEMENTS.values():
        if statement.sql(database) == sql:
            return statement
    return None


def run_command(warehouse: Warehouse, name: str, parameters: Mapping[str, Any]) -> Any:
    """Run a registered statement or procedure (the owner's side); WarehouseError if unknown."""
    statement = _STATEMENTS.get(name)
    if statement is not None:
        return warehouse.command(statement.sql(warehouse.database), parameters)
    procedure = _PROCEDURES.get(name)
    if procedure is not None:
        return procedure(warehouse, parameters)
    raise WarehouseError(f"unknown command {name!r}")


def known_commands() -> list[str]:
    return sorted({*_STATEMENTS, *_PROCEDURES})
