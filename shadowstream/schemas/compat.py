"""Schema compatibility: can a reader with one schema read data written with another?

:func:`read_problems` applies Avro's schema resolution rules (Avro spec,
"Schema Resolution") to a writer/reader pair and lists every construct that
would fail, so a mismatch is found when a schema is published or first met,
never half way through a stream. :func:`evolution_problems` is the rule a new
version of an event schema must pass against every version already in use:
each side must read the other's data (a rolling upgrade has old and new
writers and readers at the same time), plus this project's own rule that a
field is only ever added with a default. docs/schemas.md has the rules in
prose.

Schemas are the JSON (dict) form; named types may be referenced by name after
their first definition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# writer type -> reader types it may be read as (besides itself)
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}

Schema = Any  # str | dict | list, as in .avsc JSON
Names = dict[str, dict[str, Any]]


def full_name(schema: Mapping[str, Any], namespace: str | None = None) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    space = schema.get("namespace", namespace)
    return f"{space}.{name}" if space else name


def _collect_names(schema: Schema, namespace: str | None, names: Names) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, namespace, names)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name = full_name(schema, namespace)
        names.setdefault(name, schema)
        namespace = name.rpartition(".")[0] or None
        for field in schema.get("fields", []) if kind != "enum" else []:
            _collect_names(field.get("type"), namespace, names)
    elif kind == "array":
        _collect_names(schema.get("items"), namespace, names)
    elif kind == "map":
        _collect_names(schema.get("values"), namespace, names)
    elif isinstance(kind, dict | list):
        _collect_names(kind, namespace, names)


class _Resolver:
    """One writer/reader pair; named types looked up in each schema's own names."""

    def __init__(self, writer: Schema, reader: Schema) -> None:
        self.writer_names: Names = {}
        self.reader_names: Names = {}
        _collect_names(writer, None, self.writer_names)
        _collect_names(reader, None, self.reader_names)
        self.seen: set[tuple[str, str]] = set()
        self.problems: list[str] = []

    def _deref(self, schema: Schema, names: Names) -> Schema:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            found = names.get(schema)
            if found is None:  # a short name defined in a namespace
                found = next((s for n, s in names.items() if n.rsplit(".", 1)[-1] == schema), None)
            return found if found is not None else schema
        if isinstance(schema, dict) and schema.get("type") in PRIMITIVES and len(schema) == 1:
            return schema["type"]
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
            return schema["type"]
        return schema

    def check(self, writer: Schema, reader: Schema, path: str) -> bool:
        writer = self._deref(writer, self.writer_names)
        reader = self._deref(reader, self.reader_names)
        if isinstance(writer, list):  # every branch the writer may use must be readable
            ok = True
            for branch in writer:
                ok = self._branch(branch, reader, path) and ok
            return ok
        if isinstance(reader, list):
            for branch in reader:
                if _kind(self._deref(branch, self.reader_names)) == _kind(writer) and self._quiet(
                    writer, branch
                ):
                    return True
            for branch in reader:  # then a promotion, as Avro's first-match rule does
                if self._quiet(writer, branch):
                    return True
            return self._fail(path, f"{_describe(writer)} is in none of the reader's {reader}")
        return self._same_kind(writer, reader, path)

    def _branch(self, branch: Schema, reader: Schema, path: str) -> bool:
        return self.check(branch, reader, path)

    def _quiet(self, writer: Schema, reader: Schema) -> bool:
        saved, seen = self.problems, set(self.seen)
        self.problems = []
        ok = self.check(writer, reader, "")
        self.problems, self.seen = saved, seen
        return ok

    def _fail(self, path: str, message: str) -> bool:
        self.problems.append(f"{path or '$'}: {message}")
        return False

    def _same_kind(self, writer: Schema, reader: Schema, path: str) -> bool:
        wk, rk = _kind(writer), _kind(reader)
        if wk in PRIMITIVES or rk in PRIMITIVES:
            if wk == rk or rk in PROMOTIONS.get(wk, frozenset()):
                return True
            return self._fail(path, f"a {wk} cannot be read as {rk}")
        if wk != rk:
            return self._fail(path, f"a {wk} cannot be read as {rk}")
        if wk == "array":
            return self.check(writer["items"], reader["items"], f"{path}[]")
        if wk == "map":
            return self.check(writer["values"], reader["values"], f"{path}{{}}")
        if _short(writer) != _short(reader):
            return self._fail(path, f"{wk} {writer['name']} cannot be read as {reader['name']}")
        if wk == "fixed":
            if writer.get("size") != reader.get("size"):
                return self._fail(path, f"fixed size {writer.get('size')} != {reader.get('size')}")
            return True
        if wk == "enum":
            return self._enum(writer, reader, path)
        return self._record(writer, reader, path)

    def _enum(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> bool:
        missing = [s for s in writer.get("symbols", []) if s not in reader.get("symbols", [])]
        if missing and reader.get("default") is None:
            return self._fail(
                path, f"enum {reader['name']} lacks symbols {missing} and has no default"
            )
        return True

    def _record(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> bool:
        key = (json.dumps(writer, sort_keys=True), json.dumps(reader, sort_keys=True))
        if key in self.seen:  # recursive types: assume fine on the way back in
            return True
        self.seen.add(key)
        written = {f["name"]: f for f in writer.get("fields", [])}
        ok = True
        for field in reader.get("fields", []):
            name = field["name"]
            source = written.get(name)
            if source is None:
                for alias in field.get("aliases", []):
                    source = written.get(alias)
                    if source is not None:
                        break
            where = f"{path}.{name}" if path else f"$.{name}"
            if source is None:
                if "default" not in field:
                    ok = self._fail(
                        where, "the reader's field has no default and the writer lacks it"
                    )
                continue
            ok = self.check(source["type"], field["type"], where) and ok
        return ok


def _kind(schema: Schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    kind = schema.get("type")
    return "record" if kind == "error" else str(kind)


def _short(schema: Mapping[str, Any]) -> str:
    return str(schema["name"]).rsplit(".", 1)[-1]


def _describe(schema: Schema) -> str:
    kind = _kind(schema)
    return f"{kind} {schema['name']}" if isinstance(schema, dict) and "name" in schema else kind


def read_problems(writer: Schema, reader: Schema) -> list[str]:
    """Why a reader with ``reader`` cannot read data written with ``writer`` (empty: it can)."""
    resolver = _Resolver(writer, reader)
    resolver.check(writer, reader, "")
    return resolver.problems


def added_field_problems(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    """This project's rule on top of Avro's: a field is added with a default, never removed.

    Applied to the top-level record only (nested records are covered by the
    two-way read check).
    """
    problems = []
    old_names = [f["name"] for f in old.get("fields", [])]
    new_names = [f["name"] for f in new.get("fields", [])]
    for name in old_names:
        if name not in new_names:
            problems.append(f"$.{name}: removed (fields may only be added)")
    for field in new.get("fields", []):
        if field["name"] not in old_names and "default" not in field:
            problems.append(f"$.{field['name']}: added without a default")
    return problems


def evolution_problems(new: Mapping[str, Any], existing: Iterable[Mapping[str, Any]]) -> list[str]:
    """What stops ``new`` from joining ``existing`` versions of the same event type.

    Full transitive compatibility: ``new`` must read every existing version
    and every existing version must read ``new``. The check is symmetric on
    purpose: an older writer may publish its version after a newer one (an old
    SDK restarting during a rollout), so publication order says nothing about
    which version is newer. The project's own ordering rule (fields only
    appended, see :func:`added_field_problems`) is checked on the shipped
    versions, which are ordered. Versions of other record types are not compared.
    """
    name = full_name(new)
    problems: list[str] = []
    for old in existing:
        if full_name(old) != name:
            continue
        label = f"v{_version_label(old)}"
        problems += [f"new reading {label}: {p}" for p in read_problems(old, new)]
        problems += [f"{label} reading new: {p}" for p in read_problems(new, old)]
    return problems


def _version_label(schema: Mapping[str, Any]) -> str:
    from shadowstream.schemas.codec import schema_fingerprint

    return schema_fingerprint(dict(schema)).hex()[:8]
