-- Batch experiments (shadow batch run): one row per run, the latest version
-- wins (ReplacingMergeTree on updated_at; read with FINAL). source_spec is the
-- JSON that rebuilds the run's source on --resume; owner/updated_at are the
-- submitter's heartbeat (a "running" run without one has lost its submitter).
CREATE TABLE IF NOT EXISTS {db}.experiments
(
    experiment_id   String,
    challengers     Array(String),
    source_kind     LowCardinality(String),
    source          String,
    source_spec     String,
    total           UInt64,
    status          LowCardinality(String),
    rate            Float64,
    owner           String,
    message         String,
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY experiment_id
TTL toDateTime(created_at) + INTERVAL {retention_days} DAY;

-- Which items of a run were delivered to Kafka (the "submitted" count, from
-- any terminal). Written by the submitter in chunks as the broker acknowledges
-- them; re-submitting an item adds nothing (same key).
CREATE TABLE IF NOT EXISTS {db}.experiment_submissions
(
    experiment_id   String,
    request_id      String,
    submitted_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(submitted_at)
ORDER BY (experiment_id, request_id)
TTL toDateTime(submitted_at) + INTERVAL {retention_days} DAY;
