-- Batch runs: the challengers the router did not send a submitted request to
-- (endpoint not shadowed, e.g. a write endpoint; the challenger's max_rps or
-- budget). The latest row per request wins, so a re-submission clears it.
-- `shadow batch status` counts them; `--resume` skips them unless asked to
-- retry (--retry-not-routed).
ALTER TABLE {db}.experiment_submissions
    ADD COLUMN IF NOT EXISTS not_routed Array(String) DEFAULT [];
