-- Tokens in/out, tool calls and cost per request, champion and challenger, per
-- (experiment, challenger): count, sum, sum of squares, log bins (decoded by
-- analytics/distribution.py) and the first and last request time, from
-- resources_minute (sinks/clickhouse/sql/0041_resources.sql) or with --exact
-- recomputed from `comparisons FINAL`. Metrics '<metric>_delta' are the paired
-- differences (challenger - champion on the same request).
SELECT
    experiment_id,
    challenger,
    toString(metric) AS metric,
    toString(side) AS side,
    sum(m.n) AS n,
    sum(m.total) AS total,
    sum(m.total_sq) AS total_sq,
    sumMap(m.hist) AS hist,
    min(m.first_request) AS first_request,
    max(m.last_request) AS last_request
FROM {resources_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, metric, side
ORDER BY experiment_id, challenger, metric, side
