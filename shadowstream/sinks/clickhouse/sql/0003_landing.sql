-- Landing tables: the sink inserts the Avro events exactly as they travel on
-- Kafka (bodies framed into an Avro container, no decoding in Python); these
-- Null-engine tables take them column for column and the materialized views
-- below convert them into the stored tables.
CREATE TABLE IF NOT EXISTS {db}.comparisons_in
(
    request_id              String,
    challenger              String,
    experiment_id           String,
    outcome                 Enum8('both_answered' = 1, 'challenger_missing' = 2,
                                  'champion_missing' = 3, 'both_missing' = 4, 'late' = 5),
    service                 String,
    endpoint                String,
    champion_model          String,
    challenger_model        String,
    request_ts_us           Int64,
    compared_at_us          Int64,
    champion_status         String,
    challenger_status       String,
    champion_latency_ms     Nullable(Float64),
    challenger_latency_ms   Nullable(Float64),
    latency_delta_ms        Nullable(Float64),
    diverged                Nullable(Bool),
    divergence_score        Nullable(Float64),
    comparator              String,
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
    attributes              Map(String, String)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparisons_in_mv TO {db}.comparisons AS
SELECT
    request_id, challenger, experiment_id, outcome,
    toUInt8(outcome = 'late') AS is_late,
    service, endpoint, champion_model, challenger_model,
    fromUnixTimestamp64Micro(request_ts_us, 'UTC') AS request_time,
    fromUnixTimestamp64Micro(compared_at_us, 'UTC') AS compared_at,
    champion_status, challenger_status,
    champion_latency_ms, challenger_latency_ms, latency_delta_ms,
    diverged, divergence_score, comparator, diff_summary, diff_paths, ignored_paths,
    champion_format_valid, challenger_format_valid,
    champion_tokens_in, champion_tokens_out, challenger_tokens_in, challenger_tokens_out,
    champion_tool_calls, challenger_tool_calls, champion_cost, challenger_cost,
    champion_error, challenger_error,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes
FROM {db}.comparisons_in;

CREATE TABLE IF NOT EXISTS {db}.requests_in
(
    request_id      String,
    timestamp_us    Int64,
    service         String,
    endpoint        String,
    champion_model  String,
    payload         String,
    attributes      Map(String, String),
    experiment_id   String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.requests_in_mv TO {db}.requests AS
SELECT
    request_id, experiment_id,
    fromUnixTimestamp64Micro(timestamp_us, 'UTC') AS request_time,
    service, endpoint, champion_model, payload,
    CAST(attributes, 'Map(LowCardinality(String), String)') AS attributes
FROM {db}.requests_in;

CREATE TABLE IF NOT EXISTS {db}.responses_in
(
    request_id      String,
    timestamp_us    Int64,
    role            Enum8('champion' = 1, 'challenger' = 2),
    challenger      String,
    model           String,
    output          Nullable(String),
    latency_ms      Float64,
    status          Enum8('ok' = 1, 'error' = 2, 'timeout' = 3, 'skipped' = 4),
    error           Nullable(String),
    usage           Tuple(tokens_in Nullable(Int64), tokens_out Nullable(Int64),
                          tool_calls Nullable(Int32), cost Nullable(Float64)),
    tool_trace      Nullable(String),
    experiment_id   String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.responses_in_mv TO {db}.responses AS
SELECT
    request_id, experiment_id, role, challenger, model,
    fromUnixTimestamp64Micro(timestamp_us, 'UTC') AS response_time,
    output, latency_ms, toString(status) AS status, error,
    usage.tokens_in AS tokens_in, usage.tokens_out AS tokens_out,
    usage.tool_calls AS tool_calls, usage.cost AS cost,
    tool_trace
FROM {db}.responses_in;
