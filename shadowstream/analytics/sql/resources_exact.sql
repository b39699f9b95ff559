-- resources_minute recomputed from `comparisons FINAL` (--exact): the same SELECT as its
-- view in sinks/clickhouse/sql/0041_resources.sql.
(
SELECT
    experiment_id,
    challenger,
    minute,
    ['tokens_in', 'tokens_out', 'tool_calls', 'cost', 'tokens_in_delta', 'tokens_out_delta',
     'tool_calls_delta', 'cost_delta'][if(code < 8, intDiv(code, 2), code - 4) + 1] AS metric,
    if(code < 8 AND code % 2 = 0, 'champion', 'challenger') AS side,
    count() AS n,
    sum(v) AS total,
    sum(v * v) AS total_sq,
    sumMap(map(if(v <= 0, toInt16(-32768),
                  toInt16(least(greatest(ceil(log(v) / log(1.02)), -32000), 32000))),
               toUInt64(1))) AS hist,
    min(request_time) AS first_request,
    max(request_time) AS last_request
FROM (
    SELECT
        experiment_id, challenger, request_time,
        toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
        code,
        [ifNull(toFloat64(champion_tokens_in), nan), ifNull(toFloat64(challenger_tokens_in), nan),
         ifNull(toFloat64(champion_tokens_out), nan), ifNull(toFloat64(challenger_tokens_out), nan),
         ifNull(toFloat64(champion_tool_calls), nan), ifNull(toFloat64(challenger_tool_calls), nan),
         ifNull(champion_cost, nan), ifNull(challenger_cost, nan),
         ifNull(toFloat64(challenger_tokens_in) - toFloat64(champion_tokens_in), nan),
         ifNull(toFloat64(challenger_tokens_out) - toFloat64(champion_tokens_out), nan),
         ifNull(toFloat64(challenger_tool_calls) - toFloat64(champion_tool_calls), nan),
         ifNull(challenger_cost - champion_cost, nan)][code + 1] AS v
    FROM {db}.comparisons FINAL
    ARRAY JOIN arrayFilter(i -> NOT isNaN([ifNull(toFloat64(champion_tokens_in), nan), ifNull(toFloat64(challenger_tokens_in), nan),
         ifNull(toFloat64(champion_tokens_out), nan), ifNull(toFloat64(challenger_tokens_out), nan),
         ifNull(toFloat64(champion_tool_calls), nan), ifNull(toFloat64(challenger_tool_calls), nan),
         ifNull(champion_cost, nan), ifNull(challenger_cost, nan),
         ifNull(toFloat64(challenger_tokens_in) - toFloat64(champion_tokens_in), nan),
         ifNull(toFloat64(challenger_tokens_out) - toFloat64(champion_tokens_out), nan),
         ifNull(toFloat64(challenger_tool_calls) - toFloat64(champion_tool_calls), nan),
         ifNull(challenger_cost - champion_cost, nan)][i + 1]), range(12)) AS code
    WHERE is_late = 0
      AND request_time >= {since:DateTime64(3, 'UTC')}
      AND request_time < {until:DateTime64(3, 'UTC')}
      AND ({experiment:String} = '' OR experiment_id = {experiment:String})
)
GROUP BY experiment_id, challenger, minute, code
)
