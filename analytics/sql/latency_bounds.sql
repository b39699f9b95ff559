-- Latency quantiles of one (experiment, challenger) at chosen levels: the point
-- estimate and the order statistics that bound it (analytics.stats.quantile_ci_levels).
SELECT
    quantilesTDigestMergeIf({champion_point:Float64}, {champion_low:Float64},
                            {champion_high:Float64})(m.champion_latency, m.is_late = 0) AS champion_q,
    quantilesTDigestMergeIf({challenger_point:Float64}, {challenger_low:Float64},
                            {challenger_high:Float64})(m.challenger_latency, m.is_late = 0) AS challenger_q
FROM {tiered_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND experiment_id = {experiment:String}
  AND challenger = {challenger:String}
