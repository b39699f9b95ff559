-- The router's fan-out decisions per challenger in the range (agent_stats,
-- reported every stats interval, stored once each): requests the challenger
-- could have been sent (its endpoints; sampled, or skipped by sample rate,
-- budget or max_rps) and the ones it was sent. Batch requests are in
-- `sampled` too; the projection takes them out.
SELECT
    toString(challenger) AS challenger,
    sumIf(value, counter = 'sampled') AS sampled,
    sumIf(value, counter IN ('sampled', 'not_sampled_rate', 'not_sampled_budget',
                             'not_sampled_rps')) AS eligible,
    min(time) AS first_report,
    max(time) AS last_report
FROM {db}.agent_stats FINAL
WHERE stage = 'router'
  AND time >= {since:DateTime64(3, 'UTC')}
  AND time < {until:DateTime64(3, 'UTC')}
GROUP BY challenger
