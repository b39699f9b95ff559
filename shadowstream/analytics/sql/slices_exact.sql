-- comparison_slices_minute recomputed from `comparisons FINAL` (--exact).
(
SELECT
    experiment_id,
    challenger,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    attribute,
    value,
    count() AS comparisons,
    countIf(diverged IS NOT NULL) AS compared,
    countIf(diverged) AS diverged_count,
    countIf(challenger_status != 'ok') AS challenger_failed,
    count(challenger_format_valid) AS format_checked,
    countIf(challenger_format_valid = false) AS format_invalid
FROM {db}.comparisons FINAL
ARRAY JOIN
    mapKeys(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                      CAST(attributes, 'Map(String, String)'))) AS attribute,
    mapValues(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                        CAST(attributes, 'Map(String, String)'))) AS value
WHERE is_late = 0
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger, minute, attribute, value
)
