-- Measures: named values a comparator stores with each comparison (the
-- ranked-list comparator's rbo@10,p=0.9, jaccard@10, overlap@10, shared@10,
-- ndcg@10), so reports can show their distributions, also per attribute slice.
--
--   comparisons_in --comparison_measures_mv--> comparison_measures (one row per comparison)
--       |
--       +--measures_first_mv--> measures_first (Null; first copy of each comparison only)
--             +--> measure_keys_mv         -> measure_keys
--             +--> measures_minute_mv      -> measures_minute
--             +--> measure_slices_mv       -> measure_slices_minute
--
-- Only comparisons that carry measures take this path. It has a first-seen
-- filter of its own (the same design as comparisons_first in 0004, on its own
-- keys table), so a re-delivered comparison counts once here too and no view
-- of 0004 has to change. Values are kept as histograms with 0.001-wide bins
-- (key = round(value * 1000)): quantiles to within 0.0005, counts exact.
ALTER TABLE {db}.comparisons_in ADD COLUMN IF NOT EXISTS measures Map(String, Float64);

CREATE TABLE IF NOT EXISTS {db}.comparison_measures
(
    request_id      String,
    challenger      LowCardinality(String),
    experiment_id   LowCardinality(String),
    is_late         UInt8,
    request_time    DateTime64(6, 'UTC'),
    compared_at     DateTime64(6, 'UTC'),
    endpoint        LowCardinality(String),
    comparator      LowCardinality(String),
    diverged        Nullable(Bool),
    measures        Map(LowCardinality(String), Float64),
    attributes      Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree(compared_at)
PARTITION BY toYYYYMM(request_time)
ORDER BY (experiment_id, challenger, is_late, request_id)
TTL toDateTime(request_time) + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparison_measures_mv TO {db}.comparison_measures AS
SELECT
    request_id, challenger, experiment_id,
    toUInt8(outcome = 'late') AS is_late,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    fromUnixTimestamp64Micro(compared_at_us, 'UTC') AS compared_at,
    endpoint, comparator, diverged,
    CAST(measures, 'Map(LowCardinality(String), Float64)') AS measures,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes
FROM {db}.comparisons_in
WHERE notEmpty(measures);

CREATE TABLE IF NOT EXISTS {db}.measures_first
(
    dedup_key       UInt64,
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    request_time    DateTime64(6, 'UTC'),
    endpoint        LowCardinality(String),
    measures        Map(String, Float64),
    attributes      Map(String, String)
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS {db}.measure_keys
(
    day Date,
    key UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, key)
TTL day + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.measures_minute
(
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    minute          DateTime('UTC'),
    measure         LowCardinality(String),
    n               SimpleAggregateFunction(sum, UInt64),
    total           SimpleAggregateFunction(sum, Float64),
    total_sq        SimpleAggregateFunction(sum, Float64),
    hist            SimpleAggregateFunction(sumMap, Map(Int32, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (experiment_id, challenger, minute, measure)
TTL minute + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.measure_slices_minute
(
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    minute          DateTime('UTC'),
    measure         LowCardinality(String),
    attribute       LowCardinality(String),
    value           String,
    n               SimpleAggregateFunction(sum, UInt64),
    total           SimpleAggregateFunction(sum, Float64),
    total_sq        SimpleAggregateFunction(sum, Float64),
    hist            SimpleAggregateFunction(sumMap, Map(Int32, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (experiment_id, challenger, minute, measure, attribute, value)
TTL minute + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.measure_keys_mv TO {db}.measure_keys AS
SELECT toDate(request_time) AS day, dedup_key AS key
FROM {db}.measures_first;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.measures_minute_mv TO {db}.measures_minute AS
SELECT
    experiment_id,
    challenger,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    kv.1 AS measure,
    count() AS n,
    sum(kv.2) AS total,
    sum(kv.2 * kv.2) AS total_sq,
    sumMap(map(toInt32(round(kv.2 * 1000)), toUInt64(1))) AS hist
FROM {db}.measures_first
ARRAY JOIN arrayZip(mapKeys(measures), mapValues(measures)) AS kv
WHERE isFinite(kv.2)
GROUP BY experiment_id, challenger, minute, measure;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.measure_slices_mv TO {db}.measure_slices_minute AS
SELECT
    experiment_id,
    challenger,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    kv.1 AS measure,
    attribute,
    value,
    count() AS n,
    sum(kv.2) AS total,
    sum(kv.2 * kv.2) AS total_sq,
    sumMap(map(toInt32(round(kv.2 * 1000)), toUInt64(1))) AS hist
FROM {db}.measures_first
ARRAY JOIN arrayZip(mapKeys(measures), mapValues(measures)) AS kv
ARRAY JOIN
    mapKeys(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                      attributes)) AS attribute,
    mapValues(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                        attributes)) AS value
WHERE isFinite(kv.2)
GROUP BY experiment_id, challenger, minute, measure, attribute, value;

-- The first-seen filter, created last so nothing flows before its views exist.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.measures_first_mv TO {db}.measures_first AS
SELECT
    cityHash64(experiment_id, challenger, request_id) AS dedup_key,
    experiment_id,
    challenger,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    endpoint,
    measures,
    attributes
FROM {db}.comparisons_in
WHERE outcome != 'late'
  AND notEmpty(measures)
  AND (toDate(fromUnixTimestamp64Micro(request_ts_us, 'UTC')),
       cityHash64(experiment_id, challenger, request_id))
    NOT IN (
        SELECT day, key
        FROM {db}.measure_keys
        WHERE (day, key) IN (
            SELECT toDate(fromUnixTimestamp64Micro(request_ts_us, 'UTC')),
                   cityHash64(experiment_id, challenger, request_id)
            FROM {db}.comparisons_in
            WHERE notEmpty(measures)
        )
    )
LIMIT 1 BY experiment_id, challenger, request_id;
