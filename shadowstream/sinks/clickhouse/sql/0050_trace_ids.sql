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

-- Every landing column by name (`*`, as 0030 set it up), so columns added to
-- both tables by any migration flow without redefining the view again.
ALTER TABLE {db}.comparisons_in_mv MODIFY QUERY
SELECT
    * EXCEPT (request_ts_us, compared_at_us, attributes, trace_id, span_id),
    toUInt8(outcome = 'late') AS is_late,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    fromUnixTimestamp64Micro(compared_at_us, 'UTC') AS compared_at,
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
