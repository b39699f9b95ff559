"""Sinks: where comparisons and raw events are stored. ClickHouse is the one built in."""
