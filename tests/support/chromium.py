"""Headless Chromium (Debian's package, installed by ./dev) for the HTML report tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def headless_chromium(
    url: str, profile: Path, *extra: str, window: str = "1400,1600", timeout: float = 60
) -> str:
    """Run Chromium headless on ``url`` with its own profile; its stdout (``--dump-dom``)."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
        *extra,
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
