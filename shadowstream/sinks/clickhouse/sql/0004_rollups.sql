-- Rollups for fast reports: per (experiment, challenger, minute) counts, sums and
-- latency quantile states; per attribute value; and the recent notable examples.
--
-- Duplicates. Comparisons are delivered at least once. The stored `comparisons`
-- table collapses a re-delivered comparison (ReplacingMergeTree, read with
-- FINAL), but a materialized view sees every insert, so a naive rollup would
-- count a re-delivery twice. These rollups are fed through a first-seen filter
-- instead:
--
--   comparisons_in --comparisons_first_mv--> comparisons_first (Null)
--       |  keeps a row only if its key (experiment, challenger, is_late,
--       |  request_id) is not in comparison_keys yet, and only its first
--       |  occurrence within the insert (LIMIT 1 BY)
--       +--> comparison_keys_mv      -> comparison_keys    (the keys seen)
--       +--> comparisons_minute_mv   -> comparisons_minute (counts, states)
--       +--> comparison_slices_mv    -> comparison_slices_minute
--       +--> comparison_examples_mv  -> comparison_examples
--
-- The lookup is bounded: comparison_keys is ordered by (day, key) where day is
-- the request's date (a re-delivered comparison carries its original request
-- time), so an insert only probes the days it touches. Counted once, as in
-- `comparisons FINAL`, except in two rare cases, documented in analytics/README.md:
-- both copies inside one INSERT of more than one block (the sink's batches are
-- one block), or a ClickHouse failure half way through one INSERT (views are not
-- transactional). `shadow report --exact` recomputes everything from
-- `comparisons FINAL` to check. The first copy wins in rollups; FINAL keeps the
-- latest (compared_at) - they are the same comparison re-emitted.
CREATE TABLE IF NOT EXISTS {db}.comparisons_first
(
    dedup_key               UInt64,
    request_id              String,
    challenger              LowCardinality(String),
    experiment_id           LowCardinality(String),
    outcome                 Enum8('both_answered' = 1, 'challenger_missing' = 2,
                                  'champion_missing' = 3, 'both_missing' = 4, 'late' = 5),
    is_late                 UInt8,
    endpoint                LowCardinality(String),
    request_time            DateTime64(6, 'UTC'),
    champion_status         LowCardinality(String),
    challenger_status       LowCardinality(String),
    champion_latency_ms     Nullable(Float64),
    challenger_latency_ms   Nullable(Float64),
    diverged                Nullable(Bool),
    divergence_score        Nullable(Float64),
    diff_summary            String,
    diff_paths              Array(String),
    champion_format_valid   Nullable(Bool),
    challenger_format_valid Nullable(Bool),
    champion_tokens_in      Nullable(Int64),
    champion_tokens_out     Nullable(Int64),
    challenger_tokens_in    Nullable(Int64),
    challenger_tokens_out   Nullable(Int64),
    champion_tool_calls     Nullable(Int32),
    challenger_tool_calls   Nullable(Int32),
    champion_cost           Nullable(Float64),
    challenger_cost         Nullable(Float64),
    challenger_error        Nullable(String),
    attributes              Map(LowCardinality(String), String)
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS {db}.comparison_keys
(
    day Date,
    key UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, key)
TTL day + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.comparisons_minute
(
    experiment_id                LowCardinality(String),
    challenger                   LowCardinality(String),
    is_late                      UInt8,
    minute                       DateTime('UTC'),
    comparisons                  SimpleAggregateFunction(sum, UInt64),
    both_answered                SimpleAggregateFunction(sum, UInt64),
    compared                     SimpleAggregateFunction(sum, UInt64),
    diverged_count               SimpleAggregateFunction(sum, UInt64),
    divergence_score_sum         SimpleAggregateFunction(sum, Float64),
    champion_ok                  SimpleAggregateFunction(sum, UInt64),
    champion_errors              SimpleAggregateFunction(sum, UInt64),
    champion_timeouts            SimpleAggregateFunction(sum, UInt64),
    champion_missing             SimpleAggregateFunction(sum, UInt64),
    challenger_ok                SimpleAggregateFunction(sum, UInt64),
    challenger_errors            SimpleAggregateFunction(sum, UInt64),
    challenger_timeouts          SimpleAggregateFunction(sum, UInt64),
    challenger_missing           SimpleAggregateFunction(sum, UInt64),
    -- paired failures where the champion's response was captured:
    -- failure = error or timeout (champion), anything but ok (challenger)
    paired                       SimpleAggregateFunction(sum, UInt64),
    paired_both_failed           SimpleAggregateFunction(sum, UInt64),
    paired_champion_only_failed  SimpleAggregateFunction(sum, UInt64),
    paired_challenger_only_failed SimpleAggregateFunction(sum, UInt64),
    champion_format_checked      SimpleAggregateFunction(sum, UInt64),
    champion_format_invalid      SimpleAggregateFunction(sum, UInt64),
    challenger_format_checked    SimpleAggregateFunction(sum, UInt64),
    challenger_format_invalid    SimpleAggregateFunction(sum, UInt64),
    champion_tokens_in_sum       SimpleAggregateFunction(sum, Int64),
    champion_tokens_in_n         SimpleAggregateFunction(sum, UInt64),
    champion_tokens_out_sum      SimpleAggregateFunction(sum, Int64),
    champion_tokens_out_n        SimpleAggregateFunction(sum, UInt64),
    challenger_tokens_in_sum     SimpleAggregateFunction(sum, Int64),
    challenger_tokens_in_n       SimpleAggregateFunction(sum, UInt64),
    challenger_tokens_out_sum    SimpleAggregateFunction(sum, Int64),
    challenger_tokens_out_n      SimpleAggregateFunction(sum, UInt64),
    champion_tool_calls_sum      SimpleAggregateFunction(sum, Int64),
    champion_tool_calls_n        SimpleAggregateFunction(sum, UInt64),
    challenger_tool_calls_sum    SimpleAggregateFunction(sum, Int64),
    challenger_tool_calls_n      SimpleAggregateFunction(sum, UInt64),
    champion_cost_sum            SimpleAggregateFunction(sum, Float64),
    champion_cost_n              SimpleAggregateFunction(sum, UInt64),
    challenger_cost_sum          SimpleAggregateFunction(sum, Float64),
    challenger_cost_n            SimpleAggregateFunction(sum, UInt64),
    -- latency of successful (status ok) responses, t-digest states
    champion_latency             AggregateFunction(quantileTDigest, Float64),
    challenger_latency           AggregateFunction(quantileTDigest, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (experiment_id, challenger, is_late, minute)
TTL minute + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.comparison_slices_minute
(
    experiment_id      LowCardinality(String),
    challenger         LowCardinality(String),
    minute             DateTime('UTC'),
    attribute          LowCardinality(String),
    value              String,
    comparisons        UInt64,
    compared           UInt64,
    diverged_count     UInt64,
    challenger_failed  UInt64,
    format_checked     UInt64,
    format_invalid     UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (experiment_id, challenger, minute, attribute, value)
TTL minute + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.comparison_examples
(
    experiment_id      LowCardinality(String),
    challenger         LowCardinality(String),
    request_time       DateTime64(6, 'UTC'),
    request_id         String,
    kind               Enum8('diverged' = 1, 'failed' = 2, 'invalid_format' = 3),
    endpoint           LowCardinality(String),
    challenger_status  LowCardinality(String),
    divergence_score   Nullable(Float64),
    diff_summary       String,
    diff_paths         Array(String),
    challenger_error   Nullable(String),
    attributes         Map(LowCardinality(String), String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(request_time)
ORDER BY (experiment_id, challenger, request_time)
TTL toDateTime(request_time) + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparison_keys_mv TO {db}.comparison_keys AS
SELECT toDate(request_time) AS day, dedup_key AS key
FROM {db}.comparisons_first;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparisons_minute_mv TO {db}.comparisons_minute AS
SELECT
    experiment_id,
    challenger,
    is_late,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    count() AS comparisons,
    countIf(outcome = 'both_answered') AS both_answered,
    countIf(diverged IS NOT NULL) AS compared,
    countIf(diverged) AS diverged_count,
    sum(ifNull(divergence_score, 0)) AS divergence_score_sum,
    countIf(champion_status = 'ok') AS champion_ok,
    countIf(champion_status = 'error') AS champion_errors,
    countIf(champion_status = 'timeout') AS champion_timeouts,
    countIf(champion_status = 'missing') AS champion_missing,
    countIf(challenger_status = 'ok') AS challenger_ok,
    countIf(challenger_status = 'error') AS challenger_errors,
    countIf(challenger_status = 'timeout') AS challenger_timeouts,
    countIf(challenger_status = 'missing') AS challenger_missing,
    countIf(champion_status != 'missing') AS paired,
    countIf(champion_status IN ('error', 'timeout') AND challenger_status != 'ok') AS paired_both_failed,
    countIf(champion_status IN ('error', 'timeout') AND challenger_status = 'ok')
        AS paired_champion_only_failed,
    countIf(champion_status = 'ok' AND challenger_status != 'ok') AS paired_challenger_only_failed,
    count(champion_format_valid) AS champion_format_checked,
    countIf(champion_format_valid = false) AS champion_format_invalid,
    count(challenger_format_valid) AS challenger_format_checked,
    countIf(challenger_format_valid = false) AS challenger_format_invalid,
    sum(ifNull(champion_tokens_in, 0)) AS champion_tokens_in_sum,
    count(champion_tokens_in) AS champion_tokens_in_n,
    sum(ifNull(champion_tokens_out, 0)) AS champion_tokens_out_sum,
    count(champion_tokens_out) AS champion_tokens_out_n,
    sum(ifNull(challenger_tokens_in, 0)) AS challenger_tokens_in_sum,
    count(challenger_tokens_in) AS challenger_tokens_in_n,
    sum(ifNull(challenger_tokens_out, 0)) AS challenger_tokens_out_sum,
    count(challenger_tokens_out) AS challenger_tokens_out_n,
    sum(toInt64(ifNull(champion_tool_calls, 0))) AS champion_tool_calls_sum,
    count(champion_tool_calls) AS champion_tool_calls_n,
    sum(toInt64(ifNull(challenger_tool_calls, 0))) AS challenger_tool_calls_sum,
    count(challenger_tool_calls) AS challenger_tool_calls_n,
    sum(ifNull(champion_cost, 0)) AS champion_cost_sum,
    count(champion_cost) AS champion_cost_n,
    sum(ifNull(challenger_cost, 0)) AS challenger_cost_sum,
    count(challenger_cost) AS challenger_cost_n,
    quantileTDigestStateIf(ifNull(champion_latency_ms, 0),
                           champion_status = 'ok' AND champion_latency_ms IS NOT NULL)
        AS champion_latency,
    quantileTDigestStateIf(ifNull(challenger_latency_ms, 0),
                           challenger_status = 'ok' AND challenger_latency_ms IS NOT NULL)
        AS challenger_latency
FROM {db}.comparisons_first
GROUP BY experiment_id, challenger, is_late, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparison_slices_mv TO {db}.comparison_slices_minute AS
SELECT
    experiment_id,
    challenger,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    attribute,
    value,
    count() AS comparisons,
    countIf(diverged IS NOT NULL) AS compared,
    countIf(diverged) AS diverged_count,
    countIf(challenger_status != 'ok') AS challenger_failed,
    count(challenger_format_valid) AS format_checked,
    countIf(challenger_format_valid = false) AS format_invalid
FROM {db}.comparisons_first
ARRAY JOIN
    mapKeys(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                      CAST(attributes, 'Map(String, String)'))) AS attribute,
    mapValues(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                        CAST(attributes, 'Map(String, String)'))) AS value
WHERE is_late = 0
GROUP BY experiment_id, challenger, minute, attribute, value;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparison_examples_mv TO {db}.comparison_examples AS
SELECT
    experiment_id,
    challenger,
    request_time,
    request_id,
    multiIf(challenger_status IN ('error', 'timeout'), 'failed',
            challenger_format_valid = false, 'invalid_format', 'diverged') AS kind,
    endpoint,
    challenger_status,
    divergence_score,
    diff_summary,
    diff_paths,
    challenger_error,
    attributes
FROM {db}.comparisons_first
WHERE is_late = 0
  AND (diverged = true OR challenger_status IN ('error', 'timeout')
       OR challenger_format_valid = false);

-- The first-seen filter. Created last, so nothing flows before every view
-- below comparisons_first exists.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparisons_first_mv TO {db}.comparisons_first AS
SELECT
    cityHash64(experiment_id, challenger, toUInt8(outcome = 'late'), request_id) AS dedup_key,
    request_id,
    challenger,
    experiment_id,
    outcome,
    toUInt8(outcome = 'late') AS is_late,
    endpoint,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    champion_status,
    challenger_status,
    champion_latency_ms,
    challenger_latency_ms,
    diverged,
    divergence_score,
    diff_summary,
    diff_paths,
    champion_format_valid,
    challenger_format_valid,
    champion_tokens_in,
    champion_tokens_out,
    challenger_tokens_in,
    challenger_tokens_out,
    champion_tool_calls,
    challenger_tool_calls,
    champion_cost,
    challenger_cost,
    challenger_error,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes
FROM {db}.comparisons_in
WHERE (toDate(fromUnixTimestamp64Micro(request_ts_us, 'UTC')),
       cityHash64(experiment_id, challenger, toUInt8(outcome = 'late'), request_id))
    NOT IN (
        SELECT day, key
        FROM {db}.comparison_keys
        WHERE (day, key) IN (
            SELECT toDate(fromUnixTimestamp64Micro(request_ts_us, 'UTC')),
                   cityHash64(experiment_id, challenger, toUInt8(outcome = 'late'), request_id)
            FROM {db}.comparisons_in
        )
    )
LIMIT 1 BY experiment_id, challenger, is_late, request_id;

-- Comparisons stored before this migration: fill the rollups from the
-- deduplicated table (rows whose key is already recorded are skipped, so a
-- re-run adds nothing).
INSERT INTO {db}.comparisons_first
SELECT
    cityHash64(CAST(experiment_id, 'String'), CAST(challenger, 'String'), is_late, request_id)
        AS dedup_key,
    request_id, challenger, experiment_id, outcome, is_late, endpoint, request_time,
    champion_status, challenger_status, champion_latency_ms, challenger_latency_ms,
    diverged, divergence_score, diff_summary, diff_paths,
    champion_format_valid, challenger_format_valid,
    champion_tokens_in, champion_tokens_out, challenger_tokens_in, challenger_tokens_out,
    champion_tool_calls, challenger_tool_calls, champion_cost, challenger_cost,
    challenger_error, attributes
FROM {db}.comparisons FINAL
WHERE (toDate(request_time),
       cityHash64(CAST(experiment_id, 'String'), CAST(challenger, 'String'), is_late, request_id))
    NOT IN (SELECT day, key FROM {db}.comparison_keys);
