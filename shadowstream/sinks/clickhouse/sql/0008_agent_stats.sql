-- Counter increments reported by the agents every few seconds: fan-out
-- decisions per challenger (sampled, not sampled by rate / budget / rps /
-- endpoint / experiment), join outcomes, worker results. One row per
-- (report, counter); a report delivered twice is stored once (FINAL).
CREATE TABLE IF NOT EXISTS {db}.agent_stats
(
    time        DateTime64(3, 'UTC'),
    instance    String,
    seq         Int64,
    stage       LowCardinality(String),
    challenger  LowCardinality(String),
    counter     LowCardinality(String),
    value       Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (stage, challenger, counter, instance, seq)
TTL toDateTime(time) + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.stats_in
(
    instance      String,
    seq           Int64,
    timestamp_us  Int64,
    stage         String,
    challenger    String,
    counters      Map(String, Int64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.stats_in_mv TO {db}.agent_stats AS
SELECT
    fromUnixTimestamp64Micro(timestamp_us, 'UTC') AS time,
    instance, seq, stage, challenger,
    counter_value.1 AS counter,
    counter_value.2 AS value
FROM {db}.stats_in
ARRAY JOIN arrayZip(mapKeys(counters), mapValues(counters)) AS counter_value;
