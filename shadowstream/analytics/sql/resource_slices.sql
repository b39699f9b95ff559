-- Resources per attribute value (and endpoint): count, sum and log bins per
-- (experiment, challenger, attribute, value, metric, side), slices with at
-- least {min_n} responses on the challenger's side.
SELECT
    experiment_id,
    challenger,
    toString(attribute) AS attribute,
    value,
    toString(metric) AS metric,
    toString(side) AS side,
    sum(m.n) AS n,
    sum(m.total) AS total,
    sumMap(m.hist) AS hist
FROM {resource_slices_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, attribute, value, metric, side
HAVING n >= {min_n:UInt64}
ORDER BY experiment_id, challenger, metric, attribute, value, side
