"""Batch experiment sources: eval file parsing, filters, sampling, captured-traffic SQL."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest

from shadowstream.core.errors import ExperimentError
from shadowstream.experiments.filters import (
    ItemFilter,
    glob_regex,
    glob_to_like,
    parse_attribute_filters,
    sample_point,
)
from shadowstream.experiments.ids import check_experiment_id, new_experiment_id, request_id
from shadowstream.experiments.items import BatchItem
from shadowstream.experiments.sources import (
    CapturedTraffic,
    EvalFile,
    ItemDefaults,
    source_from_spec,
)
from shadowstream.experiments.sources.evalfile import item_from_record
from shadowstream.warehouse.client import QueryResult


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    return path


def item(source_id: str = "1", endpoint: str = "/e", **attributes: str) -> BatchItem:
    return BatchItem(source_id, endpoint, "{}", "svc", "champ", dict(attributes))


# -- ids ---------------------------------------------------------------------------------------
def test_experiment_ids() -> None:
    generated = new_experiment_id()
    assert re.fullmatch(r"batch-\d{8}-\d{6}-[0-9a-f]{4}", generated)
    assert check_experiment_id(generated) == generated
    assert request_id("exp-1", "abc") == "exp-1:abc"
    for bad in ("live", "", "has space", "a:b", "-x", "x" * 65):
        with pytest.raises(ExperimentError):
            check_experiment_id(bad)


# -- filters -----------------------------------------------------------------------------------
def test_attribute_filters_group_values_by_name() -> None:
    parsed = parse_attribute_filters(["language=de", "language=fr", "tier=pro", "x=a=b", "e="])
    assert parsed == {"language": ("de", "fr"), "tier": ("pro",), "x": ("a=b",), "e": ("",)}
    for bad in ("language", "=de", " =x"):
        with pytest.raises(ExperimentError, match="NAME=VALUE"):
            parse_attribute_filters([bad])


@pytest.mark.parametrize(
    ("pattern", "endpoint", "matches"),
    [
        ("/v1/*", "/v1/classify", True),
        ("/v1/*", "/v2/classify", False),
        ("/v1/?lassify", "/v1/classify", True),
        ("/v1/classify", "/v1/classify", True),
        ("/v1/classify", "/v1/classify/x", False),
        ("100%_off", "100%_off", True),
        ("100%_off", "100%Xoff", False),
        ("a.b", "aXb", False),
    ],
)
def test_endpoint_globs_match_the_same_in_python_and_sql(
    pattern: str, endpoint: str, matches: bool
) -> None:
    assert bool(glob_regex(pattern).fullmatch(endpoint)) is matches
    like = glob_to_like(pattern)
    # emulate SQL LIKE: % any run, _ one char, \ escapes
    regex = ""
    escaped = False
    for c in like:
        if escaped:
            regex += re.escape(c)
            escaped = False
        elif c == "\\":
            escaped = True
        else:
            regex += ".*" if c == "%" else "." if c == "_" else re.escape(c)
    assert bool(re.fullmatch(regex, endpoint, re.DOTALL)) is matches


def test_item_filter_endpoint_attributes_and_deterministic_fraction() -> None:
    f = ItemFilter(endpoints=("/v1/*",), attributes={"language": ("de", "fr")})
    assert f.matches(item(endpoint="/v1/x", language="de"))
    assert not f.matches(item(endpoint="/v2/x", language="de"))
    assert not f.matches(item(endpoint="/v1/x", language="en"))
    assert not f.matches(item(endpoint="/v1/x"))
    sample = ItemFilter(fraction=0.2)
    picked = [i for i in range(10_000) if sample.matches(item(str(i)))]
    assert 1800 < len(picked) < 2200
    assert picked == [i for i in range(10_000) if sample.matches(item(str(i)))]
    assert all(sample_point(str(i)) < 0.2 for i in picked)
    assert sample.fraction_ppm == 200_000
    for bad in ({"fraction": 0.0}, {"fraction": 1.5}, {"limit": 0}, {"endpoints": ("",)}):
        with pytest.raises(ExperimentError):
            ItemFilter(**bad)
    assert ItemFilter.from_json(f.to_json()) == f


# -- eval records --------------------------------------------------------------------------------
def test_record_with_input_and_reference() -> None:
    record = {
        "id": "q-1",
        "input": {"text": "hallo"},
        "reference": {"label": "billing"},
        "endpoint": "/v1/classify",
        "attributes": {"language": "de", "n": 3, "gone": None},
        "reference_latency_ms": 12.5,
    }
    got = item_from_record(record, 7, "f.jsonl:7")
    assert got.source_id == "q-1"
    assert orjson.loads(got.payload) == {"text": "hallo"}
    assert got.endpoint == "/v1/classify"
    assert got.attributes == {"language": "de", "n": "3"}
    assert got.reference is not None
    assert orjson.loads(got.reference.output or "") == {"label": "billing"}
    assert got.reference.latency_ms == 12.5
    assert got.reference.model == got.champion_model == "reference"


def test_record_defaults_and_json_text_fields() -> None:
    defaults = ItemDefaults(endpoint="/default", reference_model="gold-v1")
    got = item_from_record({"payload": '{"a":1}', "output": '"x"'}, 3, "w", defaults)
    assert got.source_id == "3"
    assert got.payload == '{"a":1}'
    assert got.endpoint == "/default"
    assert got.reference is not None and got.reference.output == '"x"'
    assert got.reference.model == "gold-v1"
    plain = item_from_record({"id": 12, "input": "just text", "reference": None}, 1, "w")
    assert plain.source_id == "12" and plain.payload == '"just text"'
    assert plain.reference is None


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([1, 2], "expected an object"),
        ({"reference": 1}, "exactly one of 'input'"),
        ({"input": 1, "payload": "1"}, "exactly one of 'input'"),
        ({"input": 1, "id": 1.5}, "id must be"),
        ({"input": 1, "id": ""}, "empty id"),
        ({"input": 1, "reference": 1, "output": "1"}, "at most one"),
        ({"payload": {"a": 1}}, "payload must be a string"),
        ({"input": 1, "attributes": [1]}, "attributes must be"),
        ({"input": 1, "reference_latency_ms": "fast"}, "must be a number"),
    ],
)
def test_bad_records_name_their_place(record: Any, message: str) -> None:
    with pytest.raises(ExperimentError, match=re.escape("evals.jsonl:4: ") + ".*" + message):
        item_from_record(record, 4, "evals.jsonl:4")


# -- eval files -----------------------------------------------------------------------------------
def test_jsonl_file_scan_pages_filters_and_limit(tmp_path: Path) -> None:
    records = [
        {"input": {"i": i}, "attributes": {"lang": "de" if i % 2 else "en"}}
        | ({"reference": {"i": i}} if i % 3 else {})
        for i in range(100)
    ]
    path = write_jsonl(tmp_path / "evals.jsonl", records)
    path.write_bytes(path.read_bytes() + b"\n   \n")  # blank lines are fine
    whole = EvalFile(path)
    scanned = whole.scan()
    assert (scanned.items, scanned.with_reference) == (100, 66)
    assert whole.format == "jsonl"
    pages = list(whole.pages(page_size=30))
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    assert [i.source_id for p in pages for i in p] == [str(n) for n in range(1, 101)]
    german = EvalFile(path, ItemFilter(attributes={"lang": ("de",)}, limit=10))
    assert german.count() == 10
    assert [orjson.loads(i.payload)["i"] for p in german.pages() for i in p] == list(
        range(1, 20, 2)
    )


def test_file_errors(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"input": 1}\n{"input": \n')
    with pytest.raises(ExperimentError, match=r"bad.jsonl:2: invalid JSON"):
        EvalFile(bad_json).scan()
    dupes = write_jsonl(
        tmp_path / "dupes.jsonl", [{"id": "a", "input": 1}, {"id": "a", "input": 2}]
    )
    with pytest.raises(ExperimentError, match=r"dupes.jsonl:2: duplicate id 'a'"):
        EvalFile(dupes).scan()
    with pytest.raises(ExperimentError, match="cannot read"):
        EvalFile(tmp_path / "missing.jsonl").scan()


def test_resume_refuses_a_changed_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [{"input": i} for i in range(5)])
    spec = EvalFile(path, ItemFilter(fraction=0.5)).spec()
    rebuilt = source_from_spec(spec, warehouse=None)  # type: ignore[arg-type]
    assert isinstance(rebuilt, EvalFile)
    assert rebuilt.spec() == spec
    write_jsonl(path, [{"input": i} for i in range(6)])
    with pytest.raises(ExperimentError, match="changed since the run started"):
        source_from_spec(spec, warehouse=None).count()  # type: ignore[arg-type]


def test_avro_container_file(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "EvalItem",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "payload", "type": "string"},
            {"name": "output", "type": ["null", "string"], "default": None},
            {"name": "attributes", "type": {"type": "map", "values": "string"}},
        ],
    }
    path = tmp_path / "evals.avro"
    with path.open("wb") as handle:
        fastavro.writer(
            handle,
            fastavro.parse_schema(schema),
            [
                {
                    "id": f"r{i}",
                    "payload": orjson.dumps({"i": i}).decode(),
                    "output": None if i == 2 else '{"ok":true}',
                    "attributes": {"k": "v"},
                }
                for i in range(5)
            ],
        )
    source = EvalFile(path, defaults=ItemDefaults(endpoint="/v1/x"))
    assert source.format == "avro"
    assert (source.scan().items, source.scan().with_reference) == (5, 4)
    items = [i for p in source.pages() for i in p]
    assert [i.source_id for i in items] == ["r0", "r1", "r2", "r3", "r4"]
    assert items[0].endpoint == "/v1/x" and items[0].attributes == {"k": "v"}
    broken = tmp_path / "broken.avro"
    broken.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ExperimentError, match=r"broken\.avro"):
        EvalFile(broken).scan()


# -- captured traffic (SQL built with bound parameters only) -----------------------------------------
class FakeWarehouse:
    """Answers the captured-traffic queries from a list of request rows."""

    database = "db"
    url = "chdb://fake"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        params = dict(parameters or {})
        self.queries.append((sql, params))
        keyed = sorted((zlib.crc32(i.encode()), i) for i in self.ids)
        if "uniqExact" in sql:
            return QueryResult(("n",), [(len(self.ids),)])
        if "cityHash64(request_id) AS h" in sql:
            after = (params["after_h"], params["after_id"])
            rows = [k for k in keyed if k > after][: params["page"]]
            return QueryResult(("h", "request_id"), rows)
        if "FROM db.requests" in sql:
            return QueryResult(
                ("request_id",),
                [(i, "svc", "/e", "champ", "{}", {"lang": "de"}) for i in params["ids"]],
            )
        rows = [
            (i, "champ", '{"a":1}', 5.0, "ok", None, 1, 2, None, None, None)
            for i in params["ids"]
            if i != "r3"
        ]
        return QueryResult(("request_id",), rows)


def test_captured_traffic_pages_by_keyset_with_bound_parameters() -> None:
    warehouse = FakeWarehouse([f"r{i}" for i in range(25)])
    item_filter = ItemFilter(
        endpoints=("/v1/*", "/v2/x"), attributes={"lang": ("de",)}, fraction=0.5, limit=23
    )
    source = CapturedTraffic(warehouse, 1_000, 2_000, item_filter)  # type: ignore[arg-type]
    assert source.count() == 23
    pages = list(source.pages(page_size=10))
    assert [len(p) for p in pages] == [10, 10, 3]
    items = [i for p in pages for i in p]
    assert len({i.source_id for i in items}) == 23
    by_id = {i.source_id: i for i in items}
    without = [i for i in items if i.reference is None]
    assert [i.source_id for i in without] == (["r3"] if "r3" in by_id else [])
    with_ref = next(i for i in items if i.reference is not None)
    assert with_ref.reference is not None and with_ref.reference.tokens_out == 2
    sql, params = warehouse.queries[0]
    assert "endpoint LIKE {endpoint_0:String} OR endpoint LIKE {endpoint_1:String}" in sql
    assert "attributes[{attr_key_0:String}] IN {attr_values_0:Array(String)}" in sql
    assert params["endpoint_0"] == "/v1/%" and params["attr_values_0"] == ["de"]
    assert params["fraction_ppm"] == 500_000
    for sql, _ in warehouse.queries:  # no user value is ever formatted into the SQL
        assert "/v1" not in sql and "'de'" not in sql
    assert source.spec()["filter"]["limit"] == 23
    rebuilt = source_from_spec(source.spec(), warehouse)  # type: ignore[arg-type]
    assert isinstance(rebuilt, CapturedTraffic) and rebuilt.filter == item_filter
    assert "captured traffic" in source.describe() and "lang=de" in source.describe()
