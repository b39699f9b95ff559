-- Each measure per attribute value (and endpoint), per (experiment, challenger):
-- slices with at least {min_n} values; `tested` counts them per measure (the
-- Bonferroni family). Lowest means first, where a challenger agrees least.
SELECT
    experiment_id,
    challenger,
    toString(measure) AS measure,
    toString(attribute) AS attribute,
    value,
    sum(m.n) AS n,
    sum(m.total) AS total,
    sum(m.total_sq) AS total_sq,
    sumMap(m.hist) AS hist,
    count() OVER (PARTITION BY experiment_id, challenger, measure) AS tested
FROM {measure_slices_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, measure, attribute, value
HAVING n >= {min_n:UInt64}
ORDER BY experiment_id, challenger, measure, total / n, n DESC, attribute, value
