-- examples.sql recomputed from `comparisons FINAL` (--exact), in one pass.
SELECT
    experiment_id,
    challenger,
    request_time,
    request_id,
    multiIf(challenger_status IN ('error', 'timeout'), 'failed',
            challenger_format_valid = false, 'invalid_format', 'diverged') AS kind,
    toString(endpoint) AS endpoint,
    toString(challenger_status) AS challenger_status,
    divergence_score,
    diff_summary,
    diff_paths,
    challenger_error,
    attributes
FROM {db}.comparisons FINAL
WHERE is_late = 0
  AND (diverged = true OR challenger_status IN ('error', 'timeout')
       OR challenger_format_valid = false)
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
ORDER BY request_time DESC, request_id
LIMIT {per_challenger:UInt32} BY experiment_id, challenger
