-- Per challenger and experiment: how does the challenger compare with the champion?
-- Reads comparisons FINAL: a comparison delivered twice counts once.
SELECT
    challenger,
    experiment_id,
    count()                                                      AS comparisons,
    countIf(outcome = 'both_answered')                           AS both_answered,
    countIf(diverged IS NOT NULL)                                AS compared_count,
    countIf(diverged = true)                                     AS diverged_count,
    countIf(diverged = true) / nullIf(countIf(diverged IS NOT NULL), 0) AS divergence_rate,
    quantile(0.5)(champion_latency_ms)                           AS champion_p50_ms,
    quantile(0.95)(champion_latency_ms)                          AS champion_p95_ms,
    quantile(0.5)(challenger_latency_ms)                         AS challenger_p50_ms,
    quantile(0.95)(challenger_latency_ms)                        AS challenger_p95_ms,
    countIf(challenger_status = 'error') / count()               AS challenger_error_rate,
    countIf(outcome IN ('challenger_missing', 'both_missing')) / count() AS challenger_missing_rate,
    countIf(champion_status = 'error') / count()                 AS champion_error_rate
FROM {db}.comparisons FINAL
WHERE is_late = 0
  AND request_time >= {since:DateTime64(6, 'UTC')}
  AND request_time < {until:DateTime64(6, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
GROUP BY challenger, experiment_id
ORDER BY experiment_id, challenger
