-- Comparisons of batch experiments per challenger in the range (run with
-- experiment = '' whatever the report's filter): the router counts their
-- requests as sampled, the projection takes them out.
SELECT challenger, sum(m.comparisons) AS comparisons
FROM {minute_source} AS m
WHERE m.is_late = 0
  AND experiment_id != 'live'
  AND minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY challenger
