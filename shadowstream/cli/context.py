"""What the commands share: their settings (config file, env vars, options), the working
directory on the import path, and running a coroutine."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def import_from_working_directory() -> None:
    """Challenger callables (``my_models:fn``) import from the working directory first,
    as with uvicorn and gunicorn: the script's own path starts at the venv's bin."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def load(ctx: click.Context, **overrides: Any) -> Any:
    """The settings: --config, $SHADOW_CONFIG or ./shadow.toml, env vars, then these overrides
    (the connection options). Says on stderr which config file it read."""
    from shadowstream.core.config import find_config_file, load_settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    config_file = find_config_file(ctx.obj.get("config_file"))
    if config_file is not None and not ctx.obj.get("config_announced"):
        ctx.obj["config_announced"] = True
        click.echo(f"config: {config_file.resolve()}", err=True)
    return load_settings(config_file, **clean)
