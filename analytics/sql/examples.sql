-- The most recent notable comparisons per (experiment, challenger): diverged,
-- failed (error/timeout) or with invalid output format.
SELECT
    experiment_id,
    challenger,
    request_time,
    request_id,
    toString(kind) AS kind,
    toString(endpoint) AS endpoint,
    toString(challenger_status) AS challenger_status,
    divergence_score,
    diff_summary,
    diff_paths,
    challenger_error,
    attributes
FROM {examples_source}
WHERE request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
ORDER BY request_time DESC, request_id
LIMIT {per_challenger:UInt32} BY experiment_id, challenger
