-- p95 latency of one challenger and of its baseline at chosen levels: the point
-- estimate and the order statistics that bound it
-- (analytics.stats.quantile_ci_levels). The baseline is the champion's latency
-- on the challenger's own comparisons, or ({baseline_is_control} = 1) the
-- control challenger's latency: the champion model timed on the shadow path.
SELECT
    quantilesTDigestMergeIf({base_point:Float64}, {base_low:Float64}, {base_high:Float64})(
        if({baseline_is_control:UInt8} = 1, m.challenger_latency, m.champion_latency),
        m.is_late = 0 AND m.challenger = {baseline:String}
    ) AS baseline_q,
    quantilesTDigestMergeIf({challenger_point:Float64}, {challenger_low:Float64},
                            {challenger_high:Float64})(
        m.challenger_latency,
        m.is_late = 0 AND m.challenger = {challenger:String}
    ) AS challenger_q
FROM {tiered_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND experiment_id = {experiment:String}
  AND challenger IN ({challenger:String}, {baseline:String})
