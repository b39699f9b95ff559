-- Divergence per request attribute value (and endpoint), per (experiment,
-- challenger). Slices under {min_compared} compared responses are left out;
-- `tested` counts the slices that remain (the Bonferroni family size).
-- Ordered by the Wilson lower bound of the slice's divergence rate, so a small
-- slice needs a high rate *and* enough evidence to rank on top.
SELECT
    experiment_id,
    challenger,
    attribute,
    value,
    sum(m.comparisons) AS comparisons,
    sum(m.compared) AS compared,
    sum(m.diverged_count) AS diverged,
    sum(m.challenger_failed) AS challenger_failed,
    sum(m.format_checked) AS format_checked,
    sum(m.format_invalid) AS format_invalid,
    count() OVER (PARTITION BY experiment_id, challenger) AS tested,
    diverged / compared AS p,
    (p + {z:Float64} * {z:Float64} / (2 * compared)
        - {z:Float64} * sqrt(p * (1 - p) / compared
                             + {z:Float64} * {z:Float64} / (4 * compared * compared)))
        / (1 + {z:Float64} * {z:Float64} / compared) AS wilson_low
FROM {slices_source} AS m
WHERE minute >= {since:DateTime64(3, 'UTC')}
  AND minute < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger, attribute, value
HAVING compared >= {min_compared:UInt64}
ORDER BY experiment_id, challenger, wilson_low DESC, compared DESC, attribute, value
LIMIT {per_challenger:UInt32} BY experiment_id, challenger
