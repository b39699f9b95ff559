"""Command-line values: durations (``--since 24h``) and times (``--from 2026-11-26T10:00``)."""

from __future__ import annotations

import datetime as dt
import re

import click


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``24h``, ``7d`` -> timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise click.BadParameter(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return dt.timedelta(seconds=value * seconds)


def parse_time(text: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO time like 2026-11-26T10:00, got {text!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
