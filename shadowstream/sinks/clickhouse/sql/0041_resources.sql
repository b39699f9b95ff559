-- Resources per request as distributions: tokens in/out, tool calls and cost,
-- champion and challenger, per (experiment, challenger, minute) and per
-- attribute slice. Fed from comparisons_first (0004), so each comparison counts
-- once. One row per (metric, side): responses that reported the metric (n),
-- their sum and sum of squares (means with intervals, projections), first and
-- last request time (the live request rate), and a histogram with
-- logarithmic bins: key i holds values in (1.02^(i-1), 1.02^i], key -32768
-- holds 0. Any quantile comes out within 1% of its value (integers up to 50
-- exactly), and the share of requests over any limit can be read at report
-- time (shadowstream/analytics/distribution.py decodes the bins).
--
-- metrics '<metric>_delta' (side 'challenger') are the challenger's value minus
-- the champion's on the same request, where both reported one: the paired
-- differences behind the projected bill's intervals (their bins are not used).
--
-- Cost to the sink (benchmarks/rollup_insert_cost.py): ~5 us per comparison
-- with all eight values reported, less when fewer are. The views unpack the
-- values by position (code = 2 x metric + side; NaN = not reported) rather
-- than as tuples of names, which measured ~30% cheaper.
CREATE TABLE IF NOT EXISTS {db}.resources_minute
(
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    minute          DateTime('UTC'),
    metric          LowCardinality(String),
    side            LowCardinality(String),
    n               SimpleAggregateFunction(sum, UInt64),
    total           SimpleAggregateFunction(sum, Float64),
    total_sq        SimpleAggregateFunction(sum, Float64),
    hist            SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    first_request   SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_request    SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (experiment_id, challenger, minute, metric, side)
TTL minute + INTERVAL {retention_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.resource_slices_minute
(
    experiment_id   LowCardinality(String),
    challenger      LowCardinality(String),
    minute          DateTime('UTC'),
    attribute       LowCardinality(String),
    value           String,
    metric          LowCardinality(String),
    side            LowCardinality(String),
    n               SimpleAggregateFunction(sum, UInt64),
    total           SimpleAggregateFunction(sum, Float64),
    hist            SimpleAggregateFunction(sumMap, Map(Int16, UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (experiment_id, challenger, minute, attribute, value, metric, side)
TTL minute + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.resources_minute_mv TO {db}.resources_minute AS
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
    FROM {db}.comparisons_first
    ARRAY JOIN arrayFilter(i -> NOT isNaN([ifNull(toFloat64(champion_tokens_in), nan), ifNull(toFloat64(challenger_tokens_in), nan),
         ifNull(toFloat64(champion_tokens_out), nan), ifNull(toFloat64(challenger_tokens_out), nan),
         ifNull(toFloat64(champion_tool_calls), nan), ifNull(toFloat64(challenger_tool_calls), nan),
         ifNull(champion_cost, nan), ifNull(challenger_cost, nan),
         ifNull(toFloat64(challenger_tokens_in) - toFloat64(champion_tokens_in), nan),
         ifNull(toFloat64(challenger_tokens_out) - toFloat64(champion_tokens_out), nan),
         ifNull(toFloat64(challenger_tool_calls) - toFloat64(champion_tool_calls), nan),
         ifNull(challenger_cost - champion_cost, nan)][i + 1]), range(12)) AS code
    WHERE is_late = 0
)
GROUP BY experiment_id, challenger, minute, code;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.resource_slices_mv TO {db}.resource_slices_minute AS
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
    FROM {db}.comparisons_first
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
)
GROUP BY experiment_id, challenger, minute, attribute, value, code;

-- Comparisons stored before this migration: fill both tables from
-- `comparisons FINAL` (each comparison once), only while they are still empty,
-- so a re-run after a partial failure adds nothing twice. Like every migration
-- with a backfill it is meant to run before the sinks consume (the sink
-- migrates at startup).
INSERT INTO {db}.resources_minute
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
      AND (SELECT count() FROM {db}.resources_minute) = 0
)
GROUP BY experiment_id, challenger, minute, code;

INSERT INTO {db}.resource_slices_minute
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
      AND (SELECT count() FROM {db}.resource_slices_minute) = 0
)
GROUP BY experiment_id, challenger, minute, attribute, value, code;
