-- One row per (experiment, challenger): every count the report and the gate
-- need, and latency quantiles of successful responses on both sides.
-- {tiered_source} is the per-minute rollup (deduplicated on insert, see
-- sinks/clickhouse/sql/0004_rollups.sql), read in hour/minute tiers
-- (tiered_rollup.sql), or with --exact the same rows from minute_exact.sql.
SELECT
    experiment_id,
    challenger,
    sumIf(m.comparisons, m.is_late = 0) AS comparisons,
    sumIf(m.comparisons, m.is_late = 1) AS late,
    sumIf(m.both_answered, m.is_late = 0) AS both_answered,
    sumIf(m.compared, m.is_late = 0) AS compared,
    sumIf(m.diverged_count, m.is_late = 0) AS diverged,
    sumIf(m.divergence_score_sum, m.is_late = 0) AS divergence_score_sum,
    sumIf(m.champion_ok, m.is_late = 0) AS champion_ok,
    sumIf(m.champion_errors, m.is_late = 0) AS champion_errors,
    sumIf(m.champion_timeouts, m.is_late = 0) AS champion_timeouts,
    sumIf(m.champion_missing, m.is_late = 0) AS champion_missing,
    sumIf(m.challenger_ok, m.is_late = 0) AS challenger_ok,
    sumIf(m.challenger_errors, m.is_late = 0) AS challenger_errors,
    sumIf(m.challenger_timeouts, m.is_late = 0) AS challenger_timeouts,
    sumIf(m.challenger_missing, m.is_late = 0) AS challenger_missing,
    sumIf(m.paired, m.is_late = 0) AS paired,
    sumIf(m.paired_both_failed, m.is_late = 0) AS paired_both_failed,
    sumIf(m.paired_champion_only_failed, m.is_late = 0) AS paired_champion_only_failed,
    sumIf(m.paired_challenger_only_failed, m.is_late = 0) AS paired_challenger_only_failed,
    sumIf(m.champion_format_checked, m.is_late = 0) AS champion_format_checked,
    sumIf(m.champion_format_invalid, m.is_late = 0) AS champion_format_invalid,
    sumIf(m.challenger_format_checked, m.is_late = 0) AS challenger_format_checked,
    sumIf(m.challenger_format_invalid, m.is_late = 0) AS challenger_format_invalid,
    sumIf(m.champion_tokens_in_sum, m.is_late = 0) AS champion_tokens_in_sum,
    sumIf(m.champion_tokens_in_n, m.is_late = 0) AS champion_tokens_in_n,
    sumIf(m.champion_tokens_out_sum, m.is_late = 0) AS champion_tokens_out_sum,
    sumIf(m.champion_tokens_out_n, m.is_late = 0) AS champion_tokens_out_n,
    sumIf(m.challenger_tokens_in_sum, m.is_late = 0) AS challenger_tokens_in_sum,
    sumIf(m.challenger_tokens_in_n, m.is_late = 0) AS challenger_tokens_in_n,
    sumIf(m.challenger_tokens_out_sum, m.is_late = 0) AS challenger_tokens_out_sum,
    sumIf(m.challenger_tokens_out_n, m.is_late = 0) AS challenger_tokens_out_n,
    sumIf(m.champion_tool_calls_sum, m.is_late = 0) AS champion_tool_calls_sum,
    sumIf(m.champion_tool_calls_n, m.is_late = 0) AS champion_tool_calls_n,
    sumIf(m.challenger_tool_calls_sum, m.is_late = 0) AS challenger_tool_calls_sum,
    sumIf(m.challenger_tool_calls_n, m.is_late = 0) AS challenger_tool_calls_n,
    sumIf(m.champion_cost_sum, m.is_late = 0) AS champion_cost_sum,
    sumIf(m.champion_cost_n, m.is_late = 0) AS champion_cost_n,
    sumIf(m.challenger_cost_sum, m.is_late = 0) AS challenger_cost_sum,
    sumIf(m.challenger_cost_n, m.is_late = 0) AS challenger_cost_n,
    quantilesTDigestMergeIf(0.5, 0.95, 0.99)(m.champion_latency, m.is_late = 0) AS champion_latency_q,
    quantilesTDigestMergeIf(0.5, 0.95, 0.99)(m.challenger_latency, m.is_late = 0)
        AS challenger_latency_q,
    min(minute) AS first_minute,
    max(minute) AS last_minute
FROM {tiered_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger
ORDER BY experiment_id, challenger
