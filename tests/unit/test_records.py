"""The typed event records (shadowstream.schemas.records) agree with the Avro schemas.

The module is generated from avro/*.avsc and committed; these tests fail when a schema
changes without regenerating it (``python -m shadowstream.schemas.record_types``), and
check that the types say what the codecs do.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import pytest

from shadowstream.schemas import (
    COMPARISON,
    DEAD_LETTER,
    REQUEST,
    RESPONSE,
    STATS,
    load_schema,
    records,
)
from shadowstream.schemas.record_types import (
    SCHEMAS,
    load_shipped,
    main,
    records_path,
    render_records,
)

TYPES = {
    "request_event": records.RequestEvent,
    "response_event": records.ResponseEvent,
    "comparison_event": records.ComparisonEvent,
    "dead_letter_event": records.DeadLetterEvent,
    "stats_event": records.StatsEvent,
}


def test_the_committed_module_is_what_the_schemas_generate() -> None:
    committed = records_path().read_text("utf-8")
    assert committed == render_records(load_shipped()), (
        "shadowstream/schemas/records.py is stale: run "
        "`python -m shadowstream.schemas.record_types` and commit it"
    )
    assert main(["--check"]) == 0
    assert set(TYPES) == set(SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_fields_and_required_keys_follow_each_schema(name: str) -> None:
    """Checked against the .avsc directly, not through the generator."""
    schema = load_schema(name)
    typed = TYPES[name]
    assert list(typed.__annotations__) == [f["name"] for f in schema["fields"]]
    assert typed.__required_keys__ == {f["name"] for f in schema["fields"] if "default" not in f}
    assert typed.__optional_keys__ == {f["name"] for f in schema["fields"] if "default" in f}


def test_nullable_enum_and_nested_fields_have_their_types() -> None:
    hints = typing.get_type_hints(records.ResponseEvent, include_extras=True)
    assert hints["output"] == typing.NotRequired[str | None]
    assert hints["usage"] is records.Usage
    assert typing.get_args(records.Status) == ("ok", "error", "timeout", "skipped")
    assert typing.get_args(records.Outcome) == tuple(
        next(f for f in load_schema("comparison_event")["fields"] if f["name"] == "outcome")[
            "type"
        ]["symbols"]
    )
    comparison = typing.get_type_hints(records.ComparisonEvent, include_extras=True)
    assert comparison["measures"] == typing.NotRequired[dict[str, float] | None]
    assert comparison["diff_paths"] == typing.NotRequired[list[str]]


def test_a_schema_change_changes_the_generated_module() -> None:
    """What the next engineer who adds a field sees: the stale check fails, and the new
    field arrives optional, at the end."""
    changed = copy.deepcopy(load_shipped())
    changed[0]["fields"].append(
        {"name": "region", "type": ["null", "string"], "default": None, "doc": "Added later."}
    )
    text = render_records(changed)
    assert text != render_records(load_shipped())
    assert "    # Added later.\n    region: NotRequired[str | None]\n" in text


def test_decoded_events_have_every_field_of_their_type() -> None:
    request: dict[str, Any] = {
        "request_id": "r-1",
        "timestamp_us": 1,
        "service": "s",
        "endpoint": "/e",
        "champion_model": "m",
        "payload": "{}",
    }
    decoded = REQUEST.decode(REQUEST.encode(request))  # defaults filled in by the codec
    assert set(decoded) == set(records.RequestEvent.__annotations__)
    for codec, typed in (
        (RESPONSE, records.ResponseEvent),
        (COMPARISON, records.ComparisonEvent),
        (DEAD_LETTER, records.DeadLetterEvent),
        (STATS, records.StatsEvent),
    ):
        assert [f["name"] for f in codec.schema["fields"]] == list(typed.__annotations__)


def test_mypy_holds_the_codecs_to_their_event_types(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from shadowstream.schemas import REQUEST, RESPONSE\n"
        "event = REQUEST.decode(b'')\n"
        "reveal_type(event)\n"
        "RESPONSE.encode(event)\n"
        "REQUEST.encode({'request_id': 'r', 'timestamp_us': 'soon', 'service': 's',\n"
        "    'endpoint': '/e', 'champion_model': 'm', 'payload': '{}'})\n"
    )
    out, _, status = mypy_api.run(
        [
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(snippet),
        ]
    )
    assert status == 1, out
    assert 'Revealed type is "TypedDict(shadowstream.schemas.records.RequestEvent' in out
    assert 'incompatible type "RequestEvent"; expected "ResponseEvent"' in out
    assert '"timestamp_us" has type "int"' in out
