-- OpenTelemetry trace ids (event schemas v2: RequestEvent.traceparent,
-- ComparisonEvent.trace_id/span_id), so a report's example links to its trace.
--
-- Rolling upgrades: sinks insert with an explicit column list (their schema's
-- fields), so a sink of the previous version keeps inserting into the landing
-- tables after these columns are added (they take their defaults); the views
-- are changed in place (MODIFY QUERY), never dropped, so no insert is lost.
ALTER TABLE {db}.comparisons ADD COLUMN IF NOT EXISTS trace_id String DEFAULT '';
ALTER TABLE {db}.comparisons ADD COLUMN IF NOT EXISTS span_id String DEFAULT '';
ALTER TABLE {db}.comparisons_in ADD COLUMN IF NOT EXISTS trace_id Nullable(String);
ALTER TABLE {db}.comparisons_in ADD COLUMN IF NOT EXISTS span_id Nullable(String);

ALTER TABLE {db}.comparisons_in_mv MODIFY QUERY
SELECT
    request_id, challenger, experiment_id, outcome,
    toUInt8(outcome = 'late') AS is_late,
    service, endpoint, champion_model, challenger_model,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    fromUnixTimestamp64Micro(compared_at_us, 'UTC') AS compared_at,
    champion_status, challenger_status,
    champion_latency_ms, challenger_latency_ms, latency_delta_ms,
    diverged, divergence_score, comparator, diff_summary, diff_paths, ignored_paths,
    champion_format_valid, challenger_format_valid,
    champion_tokens_in, champion_tokens_out, challenger_tokens_in, challenger_tokens_out,
    champion_tool_calls, challenger_tool_calls, champion_cost, challenger_cost,
    champion_error, challenger_error,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes,
    ifNull(trace_id, '') AS trace_id,
    ifNull(span_id, '') AS span_id
FROM {db}.comparisons_in;

ALTER TABLE {db}.requests ADD COLUMN IF NOT EXISTS trace_id String DEFAULT '';
ALTER TABLE {db}.requests ADD COLUMN IF NOT EXISTS span_id String DEFAULT '';
ALTER TABLE {db}.requests_in ADD COLUMN IF NOT EXISTS traceparent Nullable(String);

-- traceparent (W3C): version-trace_id-span_id-flags
ALTER TABLE {db}.requests_in_mv MODIFY QUERY
SELECT
    request_id, experiment_id,
    fromUnixTimestamp64Micro(timestamp_us, 'UTC') AS request_time,
    service, endpoint, champion_model, payload,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes,
    extract(ifNull(traceparent, ''), '^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$')
        AS trace_id,
    extract(ifNull(traceparent, ''), '^[0-9a-f]{2}-[0-9a-f]{32}-([0-9a-f]{16})-[0-9a-f]{2}$')
        AS span_id
FROM {db}.requests_in;
