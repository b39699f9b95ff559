-- Per (experiment, challenger, time bucket of {bucket_seconds}): divergence and
-- failure counts for the charts.
SELECT
    experiment_id,
    challenger,
    toDateTime(intDiv(toUInt32(minute), {bucket_seconds:UInt32}) * {bucket_seconds:UInt32}, 'UTC')
        AS bucket,
    sum(m.comparisons) AS comparisons,
    sum(m.compared) AS compared,
    sum(m.diverged_count) AS diverged_count,
    sum(m.challenger_ok) AS challenger_ok,
    sum(m.champion_ok) AS champion_ok,
    sum(m.challenger_format_checked) AS challenger_format_checked,
    sum(m.challenger_format_invalid) AS challenger_format_invalid
FROM {minute_source} AS m
WHERE m.is_late = 0
  AND minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, bucket
ORDER BY experiment_id, challenger, bucket
