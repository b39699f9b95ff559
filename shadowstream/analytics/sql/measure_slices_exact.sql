-- measure_slices_minute recomputed from `comparison_measures FINAL` (--exact).
(
SELECT
    experiment_id,
    challenger,
    toStartOfMinute(toDateTime(request_time, 'UTC')) AS minute,
    toString(kv.1) AS measure,
    attribute,
    value,
    count() AS n,
    sum(kv.2) AS total,
    sum(kv.2 * kv.2) AS total_sq,
    sumMap(map(toInt32(round(kv.2 * 1000)), toUInt64(1))) AS hist
FROM {db}.comparison_measures FINAL
ARRAY JOIN arrayZip(mapKeys(measures), mapValues(measures)) AS kv
ARRAY JOIN
    mapKeys(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                      CAST(attributes, 'Map(String, String)'))) AS attribute,
    mapValues(mapUpdate(mapFilter((k, v) -> v != '', map('endpoint', toString(endpoint))),
                        CAST(attributes, 'Map(String, String)'))) AS value
WHERE is_late = 0
  AND isFinite(kv.2)
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY experiment_id, challenger, minute, measure, attribute, value
)
