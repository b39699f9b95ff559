-- resources_minute recomputed from `comparisons FINAL` (--exact): the same SELECT as its
-- view in sinks/clickhouse/sql/0041_resources.sql.
(
SELECT
    experiment_id,
    challenger,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    m.1 AS metric,
    m.2 AS side,
    count() AS n,
    sum(assumeNotNull(m.3)) AS total,
    sum(assumeNotNull(m.3) * assumeNotNull(m.3)) AS total_sq,
    sumMap(map(
        if(assumeNotNull(m.3) <= 0, toInt16(-32768),
           toInt16(least(greatest(ceil(log(assumeNotNull(m.3)) / log(1.02)), -32000), 32000))),
        toUInt64(1))) AS hist,
    min(request_time) AS first_request,
    max(request_time) AS last_request
FROM {db}.comparisons FINAL
ARRAY JOIN arrayFilter(x -> x.3 IS NOT NULL, [
    ('tokens_in', 'champion', toNullable(toFloat64(champion_tokens_in))),
    ('tokens_in', 'challenger', toNullable(toFloat64(challenger_tokens_in))),
    ('tokens_out', 'champion', toNullable(toFloat64(champion_tokens_out))),
    ('tokens_out', 'challenger', toNullable(toFloat64(challenger_tokens_out))),
    ('tool_calls', 'champion', toNullable(toFloat64(champion_tool_calls))),
    ('tool_calls', 'challenger', toNullable(toFloat64(challenger_tool_calls))),
    ('cost', 'champion', toNullable(toFloat64(champion_cost))),
    ('cost', 'challenger', toNullable(toFloat64(challenger_cost))),
    ('tokens_in_delta', 'challenger',
     toNullable(toFloat64(challenger_tokens_in) - toFloat64(champion_tokens_in))),
    ('tokens_out_delta', 'challenger',
     toNullable(toFloat64(challenger_tokens_out) - toFloat64(champion_tokens_out))),
    ('tool_calls_delta', 'challenger',
     toNullable(toFloat64(challenger_tool_calls) - toFloat64(champion_tool_calls))),
    ('cost_delta', 'challenger', toNullable(toFloat64(challenger_cost - champion_cost)))
]) AS m
WHERE is_late = 0
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger, minute, metric, side
)
