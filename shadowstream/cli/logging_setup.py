"""The ``shadow`` command's logging: one format, quiet libraries, no secret in any line."""

from __future__ import annotations

import logging
import sys

from shadowstream.cli.safe_output import quiet_retries


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # libraries' retry chatter stays out of a command's one-line error (at the default level)
    root = logging.getLogger().level
    for noisy in ("faust", "mode", "aiokafka", "aiohttp", "kafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root))
    if root >= logging.WARNING:
        # a handler filter: clickhouse_connect sets urllib3's level itself when imported
        for handler in logging.getLogger().handlers:
            handler.addFilter(quiet_retries)
    from shadowstream.core.secrets import install_log_redaction

    install_log_redaction()  # no log line (tracebacks included) shows a secret
    for handler in logging.getLogger().handlers:
        handler.addFilter(_no_mode_crash_report)


def _no_mode_crash_report(record: logging.LogRecord) -> bool:
    """mode logs an agent's crash again ("Crashed reason=..." and "NoneType: None"):
    the agent has logged it once already, with what to do about it."""
    return not str(record.msg).endswith("Crashed reason=%r")
