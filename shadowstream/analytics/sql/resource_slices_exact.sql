-- resource_slices_minute recomputed from `comparisons FINAL` (--exact): the same SELECT as
-- its view in sinks/clickhouse/sql/0041_resources.sql.
(
SELECT
    experiment_id,
    challenger,
    minute,
    attribute,
    value,
    ['tokens_in', 'tokens_out', 'tool_calls', 'cost'][intDiv(code, 2) + 1] AS metric,
    ['champion', 'challenger'][code % 2 + 1] AS side,
    count() AS n,
    sum(v) AS total,
    sumMap(map(if(v <= 0, toInt16(-32768),
                  toInt16(least(greatest(ceil(log(v) / log(1.02)), -32000), 32000))),
               toUInt64(1))) AS hist
FROM (
    SELECT
        experiment_id, challenger,
        toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
        attribute, value, code,
        [ifNull(toFloat64(champion_tokens_in), nan), ifNull(toFloat64(challenger_tokens_in), nan),
         ifNull(toFloat64(champion_tokens_out), nan), ifNull(toFloat64(challenger_tokens_out), nan),
         ifNull(toFloat64(champion_tool_calls), nan), ifNull(toFloat64(challenger_tool_calls), nan),
         ifNull(champion_cost, nan), ifNull(challenger_cost, nan),
         ifNull(toFloat64(challenger_tokens_in) - toFloat64(champion_tokens_in), nan),
         ifNull(toFloat64(challenger_tokens_out) - toFloat64(champion_tokens_out), nan),
         ifNull(toFloat64(challenger_tool_calls) - toFloat64(champion_tool_calls), nan),
         ifNull(challenger_cost - champion_cost, nan)][code + 1] AS v
    FROM {db}.comparisons FINAL
    ARRAY JOIN
        mapKeys(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                          CAST(attributes, 'Map(String, String)'))) AS attribute,
        mapValues(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                            CAST(attributes, 'Map(String, String)'))) AS value
    ARRAY JOIN arrayFilter(i -> NOT isNaN([ifNull(toFloat64(champion_tokens_in), nan), ifNull(toFloat64(challenger_tokens_in), nan),
         ifNull(toFloat64(champion_tokens_out), nan), ifNull(toFloat64(challenger_tokens_out), nan),
         ifNull(toFloat64(champion_tool_calls), nan), ifNull(toFloat64(challenger_tool_calls), nan),
         ifNull(champion_cost, nan), ifNull(challenger_cost, nan),
         ifNull(toFloat64(challenger_tokens_in) - toFloat64(champion_tokens_in), nan),
         ifNull(toFloat64(challenger_tokens_out) - toFloat64(champion_tokens_out), nan),
         ifNull(toFloat64(challenger_tool_calls) - toFloat64(champion_tool_calls), nan),
         ifNull(challenger_cost - champion_cost, nan)][i + 1]), range(8)) AS code
    WHERE is_late = 0
      AND request_time >= {since:DateTime64(3, 'UTC')}
      AND request_time < {until:DateTime64(3, 'UTC')}
      AND ({experiment:String} = '' OR experiment_id = {experiment:String})
)
GROUP BY experiment_id, challenger, minute, attribute, value, code
)
