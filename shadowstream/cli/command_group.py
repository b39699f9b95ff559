"""The ``shadow`` command group: errors a user can cause end in one line on stderr with an
exit code of their own (:mod:`shadowstream.cli.exit_codes`), never a traceback."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.entry import EXIT_MISSING_EXTRA, missing_extra_message
from shadowstream.core.errors import (
    ConfigError,
    NotFoundError,
    ShadowstreamError,
    WarehouseUnavailableError,
)


def fail(message: str, code: int = exit_codes.ERROR) -> NoReturn:
    try:
        from rich.markup import escape

        from shadowstream.cli.output import err_console
        from shadowstream.core.secrets import redact_text
    except ModuleNotFoundError:  # rich is missing: the message still goes out
        print(f"error: {message}", file=sys.stderr)
    else:
        # escaped: "pip install 'shadowstream[chdb]'" is not rich markup
        err_console.print(
            f"[bold red]error:[/] {escape(redact_text(message))}", highlight=False, soft_wrap=True
        )
    sys.exit(code)


def error_code(exc: ShadowstreamError) -> int:
    """The exit code of an error a user can cause (never a verdict's)."""
    own = getattr(exc, "exit_code", None)  # e.g. BrokerAuthError: Kafka refused us (3)
    if isinstance(own, int):
        return own
    if isinstance(exc, ConfigError | NotFoundError):
        return exit_codes.USAGE
    if isinstance(exc, WarehouseUnavailableError):
        return exit_codes.STORE_UNAVAILABLE
    return exit_codes.ERROR


class ShadowGroup(click.Group):
    """Turns Shadowstream errors into one-line messages and distinct exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShadowstreamError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            fail(str(exc), error_code(exc))
        except KeyboardInterrupt:
            fail("interrupted", exit_codes.INTERRUPTED)
        except ModuleNotFoundError as exc:  # an optional dependency this install leaves out
            message = missing_extra_message(exc)
            if message is None or (ctx.obj and ctx.obj.get("debug")):
                raise
            fail(message.removeprefix("shadow: "), EXIT_MISSING_EXTRA)

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's usage errors exit with 3, not click's 2 (2 is "not enough data")."""
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exit_codes.USAGE)
        except click.Abort:
            if not standalone_mode:
                raise
            click.echo("interrupted", err=True)
            sys.exit(exit_codes.INTERRUPTED)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)
