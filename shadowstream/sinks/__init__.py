"""Sinks: where comparisons and raw events are stored. ClickHouse is the one built in."""

from shadowstream.sinks.base import EventSink

__all__ = ["EventSink"]
