"""What the `shadow` command prints when things go wrong: no secrets, no retry chatter."""

from __future__ import annotations

import logging
import sys
import types


def quiet_retries(record: logging.LogRecord) -> bool:
    """Drop the HTTP clients' retry warnings: the command's own error says what failed."""
    chatty = record.name.startswith(("urllib3", "clickhouse_connect"))
    return not chatty or record.levelno >= logging.ERROR


def redacted_excepthook(
    kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    """A bug's traceback, with every secret masked like any other output."""
    import traceback

    from shadowstream.core.secrets import redact_text

    sys.stderr.write(redact_text("".join(traceback.format_exception(kind, exc, tb))))
