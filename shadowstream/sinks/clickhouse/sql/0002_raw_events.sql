-- Raw requests and responses: the audit trail, and the source for replaying
-- captured traffic through a new challenger (shadow batch run --source clickhouse).
CREATE TABLE IF NOT EXISTS {db}.requests
(
    request_id      String,
    experiment_id   LowCardinality(String),
    request_time    DateTime64(6, 'UTC'),
    service         LowCardinality(String),
    endpoint        LowCardinality(String),
    champion_model  LowCardinality(String),
    payload         String,
    attributes      Map(LowCardinality(String), String),
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(request_time)
ORDER BY (experiment_id, request_id)
TTL toDateTime(request_time) + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.responses
(
    request_id      String,
    experiment_id   LowCardinality(String),
    role            Enum8('champion' = 1, 'challenger' = 2),
    challenger      LowCardinality(String),
    model           LowCardinality(String),
    response_time   DateTime64(6, 'UTC'),
    output          Nullable(String),
    latency_ms      Float64,
    status          LowCardinality(String),
    error           Nullable(String),
    tokens_in       Nullable(Int64),
    tokens_out      Nullable(Int64),
    tool_calls      Nullable(Int32),
    cost            Nullable(Float64),
    tool_trace      Nullable(String),
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(response_time)
ORDER BY (experiment_id, role, challenger, request_id)
TTL toDateTime(response_time) + INTERVAL {retention_days} DAY;
