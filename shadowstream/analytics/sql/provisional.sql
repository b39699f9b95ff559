-- Comparisons left out of divergence because the noise model of their endpoint
-- was not ready when they were judged (sinks/clickhouse/sql/0020), per
-- (experiment, challenger). A small table; FINAL counts each request once.
SELECT
    experiment_id,
    challenger,
    count() AS provisional
FROM {db}.comparison_provisional FINAL
WHERE request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger
