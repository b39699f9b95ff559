-- The per-minute rollup recomputed from the stored comparisons, deduplicated
-- with FINAL: `shadow report --exact` and the benchmark's baseline. Same
-- columns as the comparisons_minute table (sinks/clickhouse/sql/0004_rollups.sql).
(
SELECT
    experiment_id,
    challenger,
    is_late,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
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
FROM {db}.comparisons FINAL
WHERE request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger, is_late, minute
)
