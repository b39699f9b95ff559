-- Comparisons judged before the noise model of their endpoint was ready
-- (stream_agents.noise): the router emits them with diverged = null, so every
-- rollup leaves them out of divergence, and noise_provisional = true, which
-- lands them here too, so reports can say how many were left out.
-- Fed from the landing table (a Null engine: adding a column there changes no
-- view); one row per (experiment, challenger, request), duplicates collapsed.
ALTER TABLE {db}.comparisons_in ADD COLUMN IF NOT EXISTS noise_provisional Nullable(Bool);

CREATE TABLE IF NOT EXISTS {db}.comparison_provisional
(
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    request_id      String,
    request_time    DateTime64(6, 'UTC'),
    endpoint        LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(request_time)
ORDER BY (experiment_id, challenger, request_id)
TTL toDateTime(request_time) + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparison_provisional_mv TO {db}.comparison_provisional AS
SELECT
    experiment_id,
    challenger,
    request_id,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    endpoint
FROM {db}.comparisons_in
WHERE noise_provisional = true AND outcome != 'late';
