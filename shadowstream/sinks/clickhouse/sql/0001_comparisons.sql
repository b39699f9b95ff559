-- One row per (experiment, challenger, request): a ReplacingMergeTree keyed on
-- exactly that, so a comparison emitted twice (at-least-once delivery after a
-- crash) is stored once. Reports read it with FINAL. Late arrivals are kept
-- beside the original comparison (is_late = 1), never replacing it.
CREATE TABLE IF NOT EXISTS {db}.comparisons
(
    request_id              String,
    challenger              LowCardinality(String),
    experiment_id           LowCardinality(String),
    outcome                 Enum8('both_answered' = 1, 'challenger_missing' = 2,
                                  'champion_missing' = 3, 'both_missing' = 4, 'late' = 5),
    is_late                 UInt8,
    service                 LowCardinality(String),
    endpoint                LowCardinality(String),
    champion_model          LowCardinality(String),
    challenger_model        LowCardinality(String),
    request_time            DateTime64(6, 'UTC'),
    compared_at             DateTime64(6, 'UTC'),
    champion_status         LowCardinality(String),
    challenger_status       LowCardinality(String),
    champion_latency_ms     Nullable(Float64),
    challenger_latency_ms   Nullable(Float64),
    latency_delta_ms        Nullable(Float64),
    diverged                Nullable(Bool),
    divergence_score        Nullable(Float64),
    comparator              LowCardinality(String),
    diff_summary            String,
    diff_paths              Array(String),
    ignored_paths           Array(String),
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
    champion_error          Nullable(String),
    challenger_error        Nullable(String),
    attributes              Map(LowCardinality(String), String),
    inserted_at             DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(compared_at)
PARTITION BY toYYYYMM(request_time)
ORDER BY (experiment_id, challenger, is_late, request_id)
TTL toDateTime(request_time) + INTERVAL {retention_days} DAY;
