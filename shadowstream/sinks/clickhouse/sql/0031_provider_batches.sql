-- Provider batch API jobs of a batch run (OpenAI Batch API, Anthropic Message
-- Batches; docs/llm.md): one row per (run, challenger, chunk), the latest
-- version wins (read with FINAL). A chunk covers the source items
-- [first_item, end_item) in source order; batch_id is written as soon as the
-- provider created the batch, so a restarted run polls it instead of paying for
-- the same requests twice. status is the provider's own word; the counts are
-- the provider's request counts as last polled.
CREATE TABLE IF NOT EXISTS {db}.experiment_provider_batches
(
    experiment_id   String,
    challenger      LowCardinality(String),
    chunk           UInt32,
    provider        LowCardinality(String),
    batch_id        String,
    first_item      UInt64,
    end_item        UInt64,
    requests        UInt32,
    status          LowCardinality(String),
    ended           UInt8,
    total           UInt32,
    succeeded       UInt32,
    errored         UInt32,
    expired         UInt32,
    cancelled       UInt32,
    processing      UInt32,
    input_file_id   String,
    output_file_id  String,
    error_file_id   String,
    message         String,
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (experiment_id, challenger, chunk)
TTL toDateTime(created_at) + INTERVAL {retention_days} DAY;
