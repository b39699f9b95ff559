-- LLM judge verdicts per (experiment, challenger): one row per judged pair
-- (comparison_judgements, from migration 0030; the latest verdict wins).
SELECT
    experiment_id,
    challenger,
    countIf(verdict = 'better') AS better,
    countIf(verdict = 'same') AS same,
    countIf(verdict = 'worse') AS worse,
    countIf(verdict = 'undecided') AS undecided,
    countIf(verdict = 'skipped') AS skipped,
    countIf(verdict = 'error') AS errors
FROM {db}.comparison_judgements FINAL
WHERE request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND ({experiment:String} = '' OR experiment_id = {experiment:String})
  AND (empty({challengers:Array(String)}) OR has({challengers:Array(String)}, challenger))
GROUP BY experiment_id, challenger
ORDER BY experiment_id, challenger
