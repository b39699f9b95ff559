-- shadow watch: one row per verdict change or regression of a challenger, the
-- history of a continuous watch. A restarted watch reads the latest row per
-- (experiment, challenger) to know what it already announced.
CREATE TABLE IF NOT EXISTS {db}.watch_events
(
    at                  DateTime64(3, 'UTC'),
    experiment_id       LowCardinality(String),
    challenger          LowCardinality(String),
    kind                LowCardinality(String),
    verdict             LowCardinality(String),
    previous_verdict    LowCardinality(String),
    regressions         Array(String),
    samples             UInt64,
    control             String,
    summary             String,
    criteria            String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (experiment_id, challenger, at)
TTL toDateTime(at) + INTERVAL {retention_days} DAY;
