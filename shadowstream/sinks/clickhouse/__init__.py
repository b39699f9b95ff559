"""The ClickHouse sink: comparisons and raw events from Kafka into ClickHouse, batched."""
