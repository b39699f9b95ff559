"""Generates :mod:`shadowstream.schemas.records`: a TypedDict per Avro record of the shipped
event schemas (``avro/*.avsc``), so that code passing events between modules is checked
against the schemas by mypy.

    python -m shadowstream.schemas.record_types            # rewrite records.py
    python -m shadowstream.schemas.record_types --check    # exit 1 if records.py is stale

How a schema becomes types: a field with a default is ``NotRequired`` (a writer may
leave it out; the encoder writes the default, and a decoded event always has it); a
union with null is ``X | None``; an enum is a ``Literal`` of its symbols; a map is
``dict[str, X]``, an array ``list[X]``, a nested record its own TypedDict. A unit test
fails when ``records.py`` and the ``.avsc`` files disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

# the shipped event schemas, in the order their types are written
SCHEMAS = (
    "request_event",
    "response_event",
    "comparison_event",
    "dead_letter_event",
    "stats_event",
)
PRIMITIVES = {
    "null": "None",
    "boolean": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
    "string": "str",
}
LINE = 100  # the formatter's line length: longer Literal aliases go one symbol per line

HEADER = '''"""Typed event records: one TypedDict per record of the Avro event schemas.

Generated from shadowstream/schemas/avro/*.avsc by ``python -m
shadowstream.schemas.record_types``; do not edit (a unit test compares the two).
A field with a default may be left out by a writer (NotRequired); a decoded event
always has every field.
"""

# no `from __future__ import annotations`: the TypedDicts' required and optional keys
# must be known at run time too (__required_keys__, __optional_keys__)
from typing import Literal, NotRequired, TypedDict
'''


def load_shipped() -> list[dict[str, Any]]:
    folder = resources.files("shadowstream.schemas").joinpath("avro")
    return [json.loads(folder.joinpath(f"{name}.avsc").read_text("utf-8")) for name in SCHEMAS]


def render_records(schemas: list[dict[str, Any]]) -> str:
    """The text of ``records.py`` for these record schemas."""
    blocks: list[str] = []
    named: set[str] = set()
    for schema in schemas:
        blocks.extend(_definitions(schema, named))
    return HEADER + "".join(f"\n\n{block}" for block in blocks)


def _definitions(schema: Any, named: set[str]) -> Iterator[str]:
    """The definitions ``schema`` needs (enums and nested records first), then its own."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _definitions(branch, named)
        return
    if not isinstance(schema, dict):
        return
    kind = schema["type"]
    if kind == "array":
        yield from _definitions(schema["items"], named)
    elif kind == "map":
        yield from _definitions(schema["values"], named)
    elif kind in ("enum", "record") and schema["name"] not in named:
        named.add(schema["name"])
        if kind == "enum":
            yield _literal(schema["name"], schema["symbols"])
        else:
            for field in schema["fields"]:
                yield from _definitions(field["type"], named)
            yield _typed_dict(schema)


def _literal(name: str, symbols: list[str]) -> str:
    one_line = f"{name} = Literal[{', '.join(json.dumps(s) for s in symbols)}]\n"
    if len(one_line) <= LINE + 1:
        return one_line
    return f"{name} = Literal[\n" + "".join(f"    {json.dumps(s)},\n" for s in symbols) + "]\n"


def _typed_dict(schema: dict[str, Any]) -> str:
    lines = [f"class {schema['name']}(TypedDict):"]
    lines += _docstring(schema.get("doc") or f"The Avro record {schema['name']}.")
    for field in schema["fields"]:
        if field.get("doc"):
            lines += textwrap.wrap(field["doc"], LINE - 6, initial_indent="    # ",
                                   subsequent_indent="    # ")  # fmt: skip
        annotation = _annotation(field["type"])
        if "default" in field:
            annotation = f"NotRequired[{annotation}]"
        lines.append(f"    {field['name']}: {annotation}")
    return "\n".join(lines) + "\n"


def _docstring(doc: str) -> list[str]:
    wrapped = textwrap.wrap(doc, LINE - 10)
    if len(wrapped) == 1:
        return [f'    """{wrapped[0]}"""', ""]
    return [f'    """{wrapped[0]}', *(f"    {line}" for line in wrapped[1:]), '    """', ""]


def _annotation(schema: Any) -> str:
    if isinstance(schema, list):
        return " | ".join(
            sorted((_annotation(branch) for branch in schema), key=lambda t: t == "None")
        )
    if isinstance(schema, str):
        return PRIMITIVES.get(schema, schema.split(".")[-1])  # a named type by its name
    kind = schema["type"]
    if kind == "array":
        return f"list[{_annotation(schema['items'])}]"
    if kind == "map":
        return f"dict[str, {_annotation(schema['values'])}]"
    if kind in ("enum", "record", "fixed"):
        return "bytes" if kind == "fixed" else str(schema["name"])
    return _annotation(kind)


def records_path() -> Path:
    return Path(__file__).with_name("records.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate shadowstream/schemas/records.py.")
    parser.add_argument("--check", action="store_true", help="exit 1 if records.py is stale")
    args = parser.parse_args(argv)
    text = render_records(load_shipped())
    path = records_path()
    if args.check:
        stale = not path.is_file() or path.read_text("utf-8") != text
        print(f"{path}: {'stale, regenerate it' if stale else 'up to date'}")
        return 1 if stale else 0
    path.write_text(text, "utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
