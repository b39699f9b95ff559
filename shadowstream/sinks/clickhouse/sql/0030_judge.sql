-- The LLM judge's verdict and rationale, stored with each comparison it judged
-- (ComparisonEvent.judge_verdict / judge_rationale, see docs/llm.md).
--
-- The judge agent re-emits a judged comparison with the same key and a later
-- compared_at, so `comparisons FINAL` shows the verdict; the rollups count the
-- first copy only (their first-seen filter), so divergence is unchanged by it.
ALTER TABLE {db}.comparisons_in
    ADD COLUMN IF NOT EXISTS judge_verdict Nullable(String),
    ADD COLUMN IF NOT EXISTS judge_rationale Nullable(String);

ALTER TABLE {db}.comparisons
    ADD COLUMN IF NOT EXISTS judge_verdict LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS judge_rationale Nullable(String);

-- The view that fills `comparisons` selects every landing column by name
-- (`*`, expanded at each insert), so a column added to both tables later
-- flows without redefining the view again. MODIFY QUERY swaps it atomically:
-- a running sink's inserts are never dropped in between.
ALTER TABLE {db}.comparisons_in_mv MODIFY QUERY
SELECT
    * EXCEPT (request_ts_us, compared_at_us, attributes),
    toUInt8(outcome = 'late') AS is_late,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    fromUnixTimestamp64Micro(compared_at_us, 'UTC') AS compared_at,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes
FROM {db}.comparisons_in;

-- The verdicts alone, for reports: one row per judged (experiment, challenger,
-- request), the latest wins (read with FINAL). Small: only judged pairs.
CREATE TABLE IF NOT EXISTS {db}.comparison_judgements
(
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    request_id      String,
    request_time    DateTime64(6, 'UTC'),
    judged_at       DateTime64(6, 'UTC'),
    verdict         LowCardinality(String),
    rationale       String
)
ENGINE = ReplacingMergeTree(judged_at)
PARTITION BY toYYYYMM(request_time)
ORDER BY (experiment_id, challenger, request_id)
TTL toDateTime(request_time) + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparison_judgements_mv
TO {db}.comparison_judgements AS
SELECT
    experiment_id,
    challenger,
    request_id,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    fromUnixTimestamp64Micro(compared_at_us, 'UTC') AS judged_at,
    assumeNotNull(judge_verdict) AS verdict,
    ifNull(judge_rationale, '') AS rationale
FROM {db}.comparisons_in
WHERE judge_verdict IS NOT NULL AND outcome != 'late';
