-- Distribution of each comparator measure (rbo@10,p=0.9, jaccard@10, ...) per
-- (experiment, challenger): count, sum, sum of squares and 0.001-wide bins,
-- from measures_minute (sinks/clickhouse/sql/0040_measures.sql, first copy of
-- each comparison only) or with --exact from comparison_measures FINAL.
SELECT
    experiment_id,
    challenger,
    toString(measure) AS measure,
    sum(m.n) AS n,
    sum(m.total) AS total,
    sum(m.total_sq) AS total_sq,
    sumMap(m.hist) AS hist
FROM {measures_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, measure
ORDER BY experiment_id, challenger, measure
