-- The OpenTelemetry trace ids of a report's examples (stored since migration 0050),
-- so each example can link to its trace.
SELECT experiment_id, challenger, request_id, any(trace_id) AS trace
FROM {db}.comparisons FINAL
WHERE request_id IN {request_ids:Array(String)}
  AND request_time >= {since:DateTime64(3, 'UTC')}
  AND request_time < {until:DateTime64(3, 'UTC')}
  AND trace_id != ''
GROUP BY experiment_id, challenger, request_id
