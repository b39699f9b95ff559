"""Agents as real subprocesses (``python -m shadowstream.cli worker ...``): fault tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shadowstream.core.config import Settings
from shadowstream.pipeline.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]  # the repository (for importable test/bench models)


def settings_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment that makes a `shadow` process load exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOW_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        key = f"SHADOW_{name.upper()}"
        if isinstance(value, str):
            env[key] = value
        elif isinstance(value, bool | int | float):
            env[key] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            env[key] = json.dumps(value, default=str)
    for key, value in extra.items():
        env[f"SHADOW_{key.upper()}"] = str(value)
    paths = [str(ROOT), os.getcwd(), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class AgentProcess:
    """One `shadow worker ...` process we started (and only ever stop by its PID)."""

    def __init__(
        self,
        settings: Settings,
        args: list[str],
        log_dir: Path,
        name: str,
        module: str = "shadowstream.cli",
        **extra: Any,
    ):
        self.settings = settings
        self.module = module  # the `python -m` entry point (tests run older versions through one)
        self.args = args
        self.name = name
        self.log_dir = log_dir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.web_port = 0
        self.starts = 0

    def start(self) -> AgentProcess:
        self.web_port = free_port()
        env = settings_env(self.settings, web_port=self.web_port, **self.extra)
        self.starts += 1
        log = open(self.log_dir / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--log-level", "info", *self.args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def healthz(self) -> bool:
        return self.health("/readyz")[0] == 200

    def health(self, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of a health endpoint; (0, {}) when nothing answers."""
        try:
            url = f"http://127.0.0.1:{self.web_port}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return int(exc.code), json.loads(exc.read())
            except ValueError:
                return int(exc.code), {}
        except (OSError, ValueError):
            return 0, {}

    def metrics(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.web_port}/metrics.json"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            if self.healthz():
                return
            time.sleep(0.25)
        raise AssertionError(f"{self.name} not ready after {timeout}s: {self.tail()}")

    def check_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")

    def pause(self) -> None:
        """SIGSTOP: the process freezes as in a long GC pause, a VM freeze or swapping."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        path = self.log_dir / f"{self.name}-{self.starts}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
