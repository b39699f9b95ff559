"""A report over 10 million comparisons, in chDB: how long does it take?

    python benchmarks/report_10m.py                 # generate 10M rows, then time
    python benchmarks/report_10m.py --reuse         # time again on the same data
    python benchmarks/report_10m.py --rows 1000000  # smaller

The data is generated inside ClickHouse (INSERT ... SELECT FROM numbers()),
through ``comparisons_in`` like the sink's inserts, so the materialized views,
the first-seen filter and the rollups do their real work: 4 challengers
(fast - worse on language=de, slow - 2.5x latency, flaky - errors and malformed
output on long inputs, control - A/A) over 7 days, request attributes
(language, tier, input size, prompt template, endpoint), lognormal latencies.
1% of the comparisons are then delivered a second time (a separate insert):
every report must still count 10M.

Then it times every report query and the whole report (and the gate) three
times, and the same queries as a baseline: recomputed from ``comparisons
FINAL`` (what the report would cost without rollups) and, for scale, the same
without FINAL (fast but wrong: it counts the re-delivered rows twice).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shadowstream.analytics.gate import run_gate
from shadowstream.analytics.html import render_html
from shadowstream.analytics.queries import Scope, TimeRange, load_sql
from shadowstream.analytics.report import LATENCY_LEVELS, ReportOptions, build_report
from shadowstream.core.config import GateSpec
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.warehouse.client import Warehouse, connect

DATABASE = "bench"
CHUNK = 1_000_000
DAYS = 7

GENERATE = """
INSERT INTO {db}.comparisons_in
SELECT
    request_id, challenger, 'live' AS experiment_id,
    if(challenger_status = 'timeout', 'challenger_missing', 'both_answered') AS outcome,
    'support-triage' AS service, endpoint, 'champion-v1' AS champion_model,
    concat(challenger, '-v2') AS challenger_model,
    request_ts_us, request_ts_us + 400000 AS compared_at_us,
    'ok' AS champion_status, challenger_status,
    champion_latency_ms,
    if(challenger_status = 'ok', challenger_latency, NULL) AS challenger_latency_ms,
    challenger_latency_ms - champion_latency_ms AS latency_delta_ms,
    if(challenger_status = 'ok', toNullable(is_diverged OR is_invalid), NULL) AS diverged,
    if(challenger_status = 'ok', toNullable(toFloat64(is_diverged OR is_invalid)), NULL)
        AS divergence_score,
    'json' AS comparator,
    multiIf(is_invalid, '1 of 1 fields differ: $', is_diverged,
            '3 of 3 fields differ: $.summary, $.label, $.confidence', '') AS diff_summary,
    multiIf(is_invalid, ['$'], is_diverged, ['$.summary', '$.label', '$.confidence'], [])
        AS diff_paths,
    ['$.trace_id', '$.generated_at'] AS ignored_paths,
    toNullable(true) AS champion_format_valid,
    if(challenger_status = 'ok', toNullable(NOT is_invalid), NULL) AS challenger_format_valid,
    toNullable(tokens_in) AS champion_tokens_in,
    toNullable(toInt64(20 + intDiv(tokens_in, 10))) AS champion_tokens_out,
    if(challenger_status = 'ok', toNullable(tokens_in), NULL) AS challenger_tokens_in,
    if(challenger_status = 'ok', toNullable(toInt64((20 + intDiv(tokens_in, 10)) * out_factor)),
       NULL) AS challenger_tokens_out,
    CAST(NULL, 'Nullable(Int32)') AS champion_tool_calls,
    CAST(NULL, 'Nullable(Int32)') AS challenger_tool_calls,
    CAST(NULL, 'Nullable(Float64)') AS champion_cost,
    CAST(NULL, 'Nullable(Float64)') AS challenger_cost,
    CAST(NULL, 'Nullable(String)') AS champion_error,
    if(challenger_status = 'error', toNullable('upstream model returned HTTP 500'), NULL)
        AS challenger_error,
    map('language', language, 'tier', tier, 'input_size', input_size,
        'prompt_template', template) AS attributes
FROM
(
    SELECT
        intDiv(number, 4) AS req,
        ['fast', 'slow', 'flaky', 'control'][number % 4 + 1] AS challenger,
        concat('r', hex(cityHash64(req))) AS request_id,
        toInt64({start_us:Int64} + req * {step_us:Int64}) AS request_ts_us,
        cityHash64(req, 1) % 100 AS r_lang,
        cityHash64(req, 2) % 100 AS r_tier,
        cityHash64(req, 3) % 100 AS r_size,
        multiIf(r_lang < 55, 'en', r_lang < 75, 'de', r_lang < 90, 'fr', 'es') AS language,
        multiIf(r_tier < 60, 'free', r_tier < 90, 'pro', 'enterprise') AS tier,
        multiIf(r_size < 50, 'short', r_size < 85, 'medium', 'long') AS input_size,
        if(cityHash64(req, 4) % 2 = 0, 'v3', 'v4') AS template,
        multiIf(cityHash64(req, 5) % 10 < 6, '/v1/classify',
                cityHash64(req, 5) % 10 < 9, '/v1/triage', '/v1/summarize') AS endpoint,
        toInt64(multiIf(input_size = 'short', 18, input_size = 'medium', 52, 140)
                + cityHash64(req, 6) % 12) AS tokens_in,
        -- champion latency: one lognormal draw per request (Box-Muller on two hashes)
        ((cityHash64(req, 7) % 1000000) + 0.5) / 1000000 AS u1,
        ((cityHash64(req, 8) % 1000000) + 0.5) / 1000000 AS u2,
        exp(3.75 + 0.3 * sqrt(-2 * log(u1)) * cos(2 * pi() * u2)) + tokens_in * 0.3
            AS champion_latency_ms,
        randCanonical(1) AS roll,
        multiIf(challenger = 'flaky' AND roll < 0.02, 'error',
                challenger = 'slow' AND roll < 0.005, 'timeout', 'ok') AS challenger_status,
        multiIf(challenger = 'fast', 0.6, challenger = 'slow', 2.5, 1.0)
            * exp(3.75 + 0.3 * randNormal(0, 1)) + tokens_in * 0.3 AS challenger_latency,
        multiIf(challenger = 'fast', 0.9, challenger = 'slow', 1.4, 1.1) AS out_factor,
        challenger = 'flaky'
            AND randCanonical(2) < if(input_size = 'long', 0.30, 0.05) AS is_invalid,
        randCanonical(3) < multiIf(challenger = 'control', 0.01,
                                  challenger = 'fast', if(language = 'de', 0.25, 0.03),
                                  challenger = 'slow', 0.02, 0.03) AS is_diverged
    FROM numbers({offset:UInt64}, {count:UInt64})
)
"""

REDELIVER = """
INSERT INTO {db}.comparisons_in
SELECT request_id, challenger, experiment_id, outcome, service, endpoint, champion_model,
       challenger_model, toUnixTimestamp64Micro(request_time),
       toUnixTimestamp64Micro(compared_at) + 1, champion_status, challenger_status,
       champion_latency_ms, challenger_latency_ms, latency_delta_ms, diverged, divergence_score,
       comparator, diff_summary, diff_paths, ignored_paths, champion_format_valid,
       challenger_format_valid, champion_tokens_in, champion_tokens_out, challenger_tokens_in,
       challenger_tokens_out, champion_tool_calls, challenger_tool_calls, champion_cost,
       challenger_cost, champion_error, challenger_error, CAST(attributes, 'Map(String, String)')
FROM {db}.comparisons
WHERE cityHash64(request_id) % 100 = 0
"""


def say(message: str) -> None:
    print(message, flush=True)


def generate(warehouse: Warehouse, rows: int) -> None:
    db = warehouse.database
    warehouse.command(f"DROP DATABASE IF EXISTS {db}")
    migrate(warehouse)
    requests = rows // 4
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    start = end - dt.timedelta(days=DAYS)
    step_us = int(DAYS * 86400 * 1_000_000 / max(requests, 1))
    sql = GENERATE.replace("{db}", db)
    t0 = time.perf_counter()
    for offset in range(0, rows, CHUNK):
        count = min(CHUNK, rows - offset)
        t = time.perf_counter()
        warehouse.command(
            sql,
            {
                "offset": offset,
                "count": count,
                "start_us": int(start.timestamp() * 1_000_000),
                "step_us": step_us,
            },
        )
        say(
            f"  inserted {offset + count:>11,} / {rows:,} comparisons "
            f"({count / (time.perf_counter() - t):,.0f} rows/s)"
        )
    elapsed = time.perf_counter() - t0
    say(f"generated {rows:,} comparisons in {elapsed:.0f} s ({rows / elapsed:,.0f} rows/s)")
    t = time.perf_counter()
    warehouse.command(REDELIVER.replace("{db}", db))
    again = warehouse.query(
        f"SELECT count() FROM {db}.comparisons WHERE cityHash64(request_id) % 100 = 0"
    ).scalar()
    say(f"re-delivered ~1% ({again:,} rows incl. originals) in {time.perf_counter() - t:.1f} s")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def fmt(times: list[float]) -> str:
    return f"{min(times) * 1000:8.0f} ms (median {statistics.median(times) * 1000:.0f})"


QUERIES: dict[str, dict[str, Any]] = {
    "challengers": {},
    "slices": {"z": 1.96, "min_compared": 30, "per_challenger": 5, "challengers": []},
    "examples": {"per_challenger": 5, "challengers": []},
    "timeseries": {"bucket_seconds": 10800, "challengers": []},
    "latency_grid": {"challengers": []},
}


def run_query(scope: Scope, name: str, variant: str, params: dict[str, Any]) -> Any:
    sql = load_sql(name, scope.warehouse.database, exact=variant != "rollup")
    if variant == "no FINAL":
        sql = sql.replace(" FINAL", "")
    return scope.warehouse.query(sql, scope.parameters(**params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "shadow-10m"))
    parser.add_argument("--reuse", action="store_true", help="Time the existing data again.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    warehouse = connect(f"chdb://{Path(args.data_dir).resolve()}", DATABASE)
    say(f"chDB at {args.data_dir}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if args.reuse:
        migrate(warehouse)  # a newer schema (e.g. another rollup tier) backfills itself
    else:
        generate(warehouse, args.rows)
    db = warehouse.database
    stored = warehouse.query(
        f"SELECT count(), uniqExact(request_id, challenger) FROM {db}.comparisons"
    ).rows[0]
    parts = warehouse.query(
        "SELECT table, count() FROM system.parts WHERE database = {db:String} AND active "
        "GROUP BY table ORDER BY table",
        {"db": db},
    ).rows
    rollup_rows = [
        warehouse.query(f"SELECT count() FROM {db}.{table}").scalar()
        for table in ("comparisons_minute", "comparisons_hour", "comparison_slices_minute")
    ]
    say(
        f"comparisons table: {stored[0]:,} rows stored, {stored[1]:,} distinct; rollup rows: "
        f"minute {rollup_rows[0]:,}, hour {rollup_rows[1]:,}, slices {rollup_rows[2]:,}; "
        f"active parts: {', '.join(f'{t} {n}' for t, n in parts)}"
    )

    scope = Scope(warehouse, TimeRange().snapped())
    say(f"\nper query, best of {args.repeat}:")
    variants = ["rollup"] if args.skip_baseline else ["rollup", "FINAL", "no FINAL"]
    say(f"  {'query':<14}" + "".join(f"{v:>30}" for v in variants))
    for name, params in QUERIES.items():
        cells = []
        for variant in variants:
            times, _ = timed(
                lambda n=name, v=variant, p=params: run_query(scope, n, v, p),
                args.repeat if variant == "rollup" else 1,
            )
            cells.append(fmt(times))
        say(f"  {name:<14}" + "".join(f"{c:>30}" for c in cells))

    say("\nwhole report (everything `shadow report --format json` shows: tables and charts):")
    now = dt.datetime.now(dt.UTC)
    cases = [
        ("all 7 days, from the rollups", TimeRange(), False, args.repeat),
        (
            "--since 24h (partial hours)",
            TimeRange(since=now - dt.timedelta(hours=24)),
            False,
            args.repeat,
        ),
        (
            "--from/--to, 3 days mid-range",
            TimeRange(
                now - dt.timedelta(days=5, minutes=17), now - dt.timedelta(days=2, minutes=41)
            ),
            False,
            args.repeat,
        ),
    ]
    if not args.skip_baseline:
        cases.append(("all 7 days, comparisons FINAL", TimeRange(), True, 1))
    for label, window, exact, runs in cases:
        times, report = timed(
            lambda w=window, e=exact: build_report(
                Scope(warehouse, w, "", e), ReportOptions(charts=True)
            ),
            runs,
        )
        total = sum(r.comparisons for r in report.challengers)
        say(f"  {label:<34} {fmt(times)}   {total:>10,} comparisons  {report.timings_ms}")
        if window == TimeRange():
            assert total == stored[1], (total, stored)  # each comparison counted once
    times, _ = timed(
        lambda: render_html(
            build_report(Scope(warehouse, TimeRange()), ReportOptions(charts=True))
        ),
        args.repeat,
    )
    say(f"  {'HTML report (queries + render)':<34} {fmt(times)}")
    times, results = timed(
        lambda: run_gate(Scope(warehouse, TimeRange()), GateSpec(), "control"), args.repeat
    )
    verdicts = ", ".join(f"{r.challenger} {r.verdict}" for r in results)
    say(f"  {'gate (all challengers)':<34} {fmt(times)}   {verdicts}")
    say(f"\n(latency grid: {len(LATENCY_LEVELS)} quantile levels per side per challenger)")


if __name__ == "__main__":
    main()
