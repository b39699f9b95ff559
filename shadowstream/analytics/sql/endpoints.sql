-- Comparisons per endpoint for every (experiment, challenger) in range: which
-- control shares a challenger's endpoints (analytics.pairing). Read from the
-- slice rollup, where the endpoint is one more attribute.
SELECT
    experiment_id,
    challenger,
    value AS endpoint,
    sum(m.comparisons) AS comparisons
FROM {slices_source} AS m
WHERE attribute = 'endpoint'
  AND minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger, endpoint
ORDER BY experiment_id, challenger, endpoint
