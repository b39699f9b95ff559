-- Like timeseries.sql, for short ranges (under half an hour): buckets below a
-- minute, so computed from `comparisons FINAL` rather than the per-minute rollup.
SELECT
    experiment_id,
    challenger,
    toDateTime(intDiv(toUInt32(toDateTime(request_time, 'UTC')), {bucket_seconds:UInt32})
               * {bucket_seconds:UInt32}, 'UTC') AS bucket,
    count() AS comparisons,
    countIf(diverged IS NOT NULL) AS compared,
    countIf(diverged) AS diverged_count,
    countIf(challenger_status = 'ok') AS challenger_ok,
    countIf(champion_status = 'ok') AS champion_ok,
    count(challenger_format_valid) AS challenger_format_checked,
    countIf(challenger_format_valid = false) AS challenger_format_invalid
FROM {db}.comparisons FINAL
WHERE is_late = 0
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, bucket
ORDER BY experiment_id, challenger, bucket
