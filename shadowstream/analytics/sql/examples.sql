-- The most recent notable comparisons per (experiment, challenger): diverged,
-- failed (error/timeout) or with invalid output format. Two steps: the newest
-- request times per group (a bounded top-k over one column), then only those
-- rows (the table is ordered by experiment, challenger, request_time).
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
FROM {db}.comparison_examples
WHERE (experiment_id, challenger, request_time) IN (
        SELECT experiment_id, challenger, fromUnixTimestamp64Micro(-newest, 'UTC')
        FROM (
            SELECT
                experiment_id,
                challenger,
                groupArraySorted({per_challenger:UInt32})(-toUnixTimestamp64Micro(request_time))
                    AS newest_times
            FROM {db}.comparison_examples
            WHERE request_time >= {since:DateTime64(3, 'UTC')}
              AND request_time < {until:DateTime64(3, 'UTC')}
              AND ({experiment:String} = '' OR experiment_id = {experiment:String})
              AND (empty({challengers:Array(String)})
                   OR has({challengers:Array(String)}, challenger))
            GROUP BY experiment_id, challenger
        )
        ARRAY JOIN newest_times AS newest
    )
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
ORDER BY request_time DESC, request_id
LIMIT {per_challenger:UInt32} BY experiment_id, challenger
