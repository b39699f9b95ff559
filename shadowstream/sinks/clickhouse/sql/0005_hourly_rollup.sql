-- An hourly tier of the per-minute rollup (same columns, same first-seen
-- filter: it is fed from comparisons_first too). A report over a long range
-- merges one t-digest state per hour instead of sixty: the whole hours of the
-- range come from here, the partial hours at either end from
-- comparisons_minute (analytics/sql/tiered_rollup.sql), so results are the
-- same as from the minute table alone, ~50x faster over a week of data.
--
-- The backfill aggregates the minute rollup. Like every migration it is meant
-- to run before the sinks consume (the sink migrates at startup); a comparison
-- inserted by another process between the view's creation and the backfill
-- would be counted twice in this tier.
CREATE TABLE IF NOT EXISTS {db}.comparisons_hour
(
    experiment_id                LowCardinality(String),
    challenger                   LowCardinality(String),
    is_late                      UInt8,
    hour                         DateTime('UTC'),
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
PARTITION BY toYYYYMM(hour)
ORDER BY (experiment_id, challenger, is_late, hour)
TTL hour + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.comparisons_hour_mv TO {db}.comparisons_hour AS
SELECT
    experiment_id,
    challenger,
    is_late,
    toStartOfHour(toDateTime(request_time, 'UTC')) AS hour,
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
GROUP BY experiment_id, challenger, is_late, hour;

-- rollups stored before this migration
INSERT INTO {db}.comparisons_hour
SELECT
    m.experiment_id AS experiment_id,
    m.challenger AS challenger,
    m.is_late AS is_late,
    toStartOfHour(m.minute) AS hour,
    sum(m.comparisons) AS comparisons,
    sum(m.both_answered) AS both_answered,
    sum(m.compared) AS compared,
    sum(m.diverged_count) AS diverged_count,
    sum(m.divergence_score_sum) AS divergence_score_sum,
    sum(m.champion_ok) AS champion_ok,
    sum(m.champion_errors) AS champion_errors,
    sum(m.champion_timeouts) AS champion_timeouts,
    sum(m.champion_missing) AS champion_missing,
    sum(m.challenger_ok) AS challenger_ok,
    sum(m.challenger_errors) AS challenger_errors,
    sum(m.challenger_timeouts) AS challenger_timeouts,
    sum(m.challenger_missing) AS challenger_missing,
    sum(m.paired) AS paired,
    sum(m.paired_both_failed) AS paired_both_failed,
    sum(m.paired_champion_only_failed) AS paired_champion_only_failed,
    sum(m.paired_challenger_only_failed) AS paired_challenger_only_failed,
    sum(m.champion_format_checked) AS champion_format_checked,
    sum(m.champion_format_invalid) AS champion_format_invalid,
    sum(m.challenger_format_checked) AS challenger_format_checked,
    sum(m.challenger_format_invalid) AS challenger_format_invalid,
    sum(m.champion_tokens_in_sum) AS champion_tokens_in_sum,
    sum(m.champion_tokens_in_n) AS champion_tokens_in_n,
    sum(m.champion_tokens_out_sum) AS champion_tokens_out_sum,
    sum(m.champion_tokens_out_n) AS champion_tokens_out_n,
    sum(m.challenger_tokens_in_sum) AS challenger_tokens_in_sum,
    sum(m.challenger_tokens_in_n) AS challenger_tokens_in_n,
    sum(m.challenger_tokens_out_sum) AS challenger_tokens_out_sum,
    sum(m.challenger_tokens_out_n) AS challenger_tokens_out_n,
    sum(m.champion_tool_calls_sum) AS champion_tool_calls_sum,
    sum(m.champion_tool_calls_n) AS champion_tool_calls_n,
    sum(m.challenger_tool_calls_sum) AS challenger_tool_calls_sum,
    sum(m.challenger_tool_calls_n) AS challenger_tool_calls_n,
    sum(m.champion_cost_sum) AS champion_cost_sum,
    sum(m.champion_cost_n) AS champion_cost_n,
    sum(m.challenger_cost_sum) AS challenger_cost_sum,
    sum(m.challenger_cost_n) AS challenger_cost_n,
    quantileTDigestMergeState(m.champion_latency) AS champion_latency,
    quantileTDigestMergeState(m.challenger_latency) AS challenger_latency
FROM {db}.comparisons_minute AS m
GROUP BY experiment_id, challenger, is_late, hour;
