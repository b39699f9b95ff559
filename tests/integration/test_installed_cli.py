"""The `shadow` command as installed from the wheel (built as the Dockerfile builds it).

Each test installs the wheel into a fresh virtual environment that sees a chosen
subset of the development environment's packages (no network): the base
install (the SDK only), a server install without chDB and the embedded broker,
and everything. Then every command runs its real code path from a directory
outside the repository, against a broker started with `shadow broker`.
Every process is started here and stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import site
import subprocess
import sys
import time
import urllib.request
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shadowstream.pipeline.embedded import free_port

DEV_SITE = Path(site.getsitepackages()[0])
NOT_OURS = ("shadowstream", "__editable__", "__pycache__")
TIMEOUT = 300
PIP = (sys.executable, "-m", "pip")


def make_env(root: Path, wheel: Path, keep: Callable[[str], bool]) -> Path:
    """A venv with the wheel installed; of the dev environment's packages it sees only
    those ``keep`` accepts (by site-packages entry name). Returns its bin directory."""
    venv.create(root, with_pip=False)
    deps = root / "deps"
    deps.mkdir()
    for entry in DEV_SITE.iterdir():
        name = entry.name
        if name.startswith(NOT_OURS) or name.endswith(".pth") or not keep(name.lower()):
            continue
        (deps / name).symlink_to(entry)
    (site_packages(root) / "dev-deps.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            *PIP,
            "--python",
            str(root / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root / "bin"


def site_packages(root: Path) -> Path:
    (found,) = root.glob("lib/python3*/site-packages")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHADOW_", "PYTHON"))}
    env.update(COLUMNS="80", PYTHONUNBUFFERED="1", **extra)
    return env


def shadow(
    bin_dir: Path, cwd: Path, *args: str, timeout: float = TIMEOUT, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "shadow"), *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *expected: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if not line.startswith("config: ")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in lines[0], lines[0]


# -- the base install: the SDK, and a `shadow` that names the extra ---------------------------------
def test_the_base_install_is_the_sdk_and_its_shadow_script_names_the_extra(
    wheel: Path, tmp_path: Path
) -> None:
    base = ("confluent_kafka", "fastavro")
    bin_dir = make_env(tmp_path / "env", wheel, lambda name: name.startswith(base))
    done = shadow(bin_dir, tmp_path, "--help")
    one_line_error(done, 3, "pip install 'shadowstream[cli]'", "shadowstream[server]")
    sdk = subprocess.run(
        [str(bin_dir / "python"), "-c", "from shadowstream.producers import ShadowEmitter"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sdk.returncode == 0, sdk.stderr


# -- [server]: no chDB, no embedded broker ------------------------------------------------------------
def test_a_server_install_reports_and_sinks_without_chdb(wheel: Path, tmp_path: Path) -> None:
    bin_dir = make_env(
        tmp_path / "env", wheel, lambda name: "chdb" not in name and "calfkit" not in name
    )
    python = str(bin_dir / "python")
    imports = (
        "import sys, shadowstream.sinks.clickhouse.sink, shadowstream.analytics.report, "
        "shadowstream.pipeline.app, shadowstream.cli.main\n"
        "assert 'chdb' not in sys.modules\n"
        "import importlib.util; assert importlib.util.find_spec('chdb') is None"
    )
    done = subprocess.run([python, "-c", imports], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    closed = f"http://127.0.0.1:{free_port()}"  # a ClickHouse server URL nobody answers
    one_line_error(
        shadow(bin_dir, tmp_path, "report", "--clickhouse-url", closed),
        4,  # the store is unreachable
        "is unavailable",
    )
    (tmp_path / "store").mkdir()
    one_line_error(
        shadow(bin_dir, tmp_path, "report", "--clickhouse-url", f"chdb://{tmp_path / 'store'}"),
        3,  # an extra to install: a usage/config error
        "pip install 'shadowstream[chdb]'",
    )
    one_line_error(shadow(bin_dir, tmp_path, "demo", "--seconds", "1"), 3, "shadowstream[all]")


# -- everything: every command ------------------------------------------------------------------------
class Background:
    """A `shadow` process we started; stopped by its PID."""

    def __init__(self, bin_dir: Path, cwd: Path, name: str, *args: str, **env: str) -> None:
        self.log = cwd / f"{name}.log"
        self.proc = subprocess.Popen(
            [str(bin_dir / "shadow"), *args],
            cwd=cwd,
            env=clean_env(**env),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                f"{what}: exited {self.proc.returncode}\n{self.output()}"
            )
            if predicate():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}\n{self.output()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


def healthy(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    return check


MODELS = '''
def echo(payload):
    """A challenger in the working directory: imported without PYTHONPATH."""
    return {"label": "billing", "echo": payload}
'''


@pytest.fixture
def full_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_env(tmp_path_factory.mktemp("full") / "env", wheel, lambda name: True)


@pytest.fixture
def started() -> Iterator[list[Background]]:
    procs: list[Background] = []
    yield procs
    for proc in reversed(procs):
        proc.stop()


def test_every_command_runs_from_the_installed_wheel(
    full_env: Path, tmp_path: Path, started: list[Background]
) -> None:
    work = tmp_path / "service"  # a user's directory: its own models and shadow.toml
    work.mkdir()
    (work / "my_models.py").write_text(MODELS)
    run = lambda *args, **env: shadow(full_env, work, *args, **env)  # noqa: E731
    assert run("--version").returncode == 0
    assert "worker" in run("--help").stdout

    port = free_port()
    broker = Background(full_env, work, "broker", "broker", "--port", str(port))
    started.append(broker)
    broker.wait_for(lambda: "broker ready" in broker.output(), "the broker")
    one_line_error(run("broker", "--port", str(port)), 3, f"port {port}", "taken")
    (work / "shadow.toml").write_text(
        f'broker_url = "kafka://127.0.0.1:{port}"\nclickhouse_url = "chdb://data/chdb"\n'
        "partitions = 2\njoin_window_seconds = 3\nkafka_session_timeout_ms = 6000\n"
        'sink_batch_seconds = 0.5\n\n[[challengers]]\nname = "echo"\ncallable = "my_models:echo"\n'
    )
    config = run("config")
    assert config.returncode == 0 and json.loads(config.stdout)["partitions"] == 2
    assert f"config: {work / 'shadow.toml'}" in config.stderr
    one_line_error(run("report"), 3, "no ClickHouse data")
    assert not (work / "data").exists()  # a report does not create the store
    assert "created" in run("topics", "create").stdout
    assert run("db", "migrate").returncode == 0 and (work / "data").is_dir()

    web = free_port()
    pipeline = Background(full_env, work, "run", "run", SHADOW_WEB_PORT=str(web))
    started.append(pipeline)
    pipeline.wait_for(healthy(web), "shadow run ready")
    extra_ports = [free_port() for _ in range(3)]
    workers = [
        Background(
            full_env, work, "router", "worker", "router", SHADOW_WEB_PORT=str(extra_ports[0])
        ),
        Background(
            full_env,
            work,
            "worker",
            "worker",
            "challenger",
            "--name",
            "echo",
            SHADOW_WEB_PORT=str(extra_ports[1]),
        ),
        Background(
            full_env,
            work,
            "sink",
            "worker",
            "sink",
            "--clickhouse-url",
            f"chdb://{work / 'second-store'}",
            SHADOW_WEB_PORT=str(extra_ports[2]),
        ),
    ]
    started.extend(workers)
    traffic = run("traffic", "--rate", "40", "--seconds", "3")
    assert traffic.returncode == 0 and "emitted" in traffic.stdout, traffic.stderr

    def compared() -> bool:
        done = run("report", "--format", "json", "--since", "1h")
        return done.returncode == 0 and '"echo"' in done.stdout

    pipeline.wait_for(compared, "comparisons in the report (routed to the running pipeline)")
    gate = run("gate", "--format", "json", "--since", "1h")
    assert gate.returncode in (0, 1, 2) and json.loads(gate.stdout), gate.stderr
    for proc, port_ in zip(workers, extra_ports, strict=True):
        proc.wait_for(healthy(port_), f"{proc.log.stem} ready")
        assert proc.stop() == 0, proc.output()

    batch = run(
        "batch",
        "run",
        "--challenger",
        "echo",
        "--source",
        "captured",
        "--since",
        "1h",
        "--limit",
        "20",
        "--experiment",
        "replay-1",
    )
    assert batch.returncode == 0, batch.stdout + batch.stderr
    status = run("batch", "status", "--format", "json")
    assert [r["experiment_id"] for r in json.loads(status.stdout)] == ["replay-1"]
    cancel = run("batch", "cancel", "replay-1")
    assert cancel.returncode == 0 and "already completed" in cancel.stdout, cancel.stderr
    assert pipeline.stop() == 0, pipeline.output()

    demo = run("demo", "--seconds", "3", "--rate", "40", "--data-dir", "demo-data", timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    script = str(full_env / "shadow")
    printed = [line.strip() for line in demo.stdout.splitlines() if script in line]
    assert any(line.endswith(f"{script} report") for line in printed), demo.stdout
    (full_report,) = [line for line in printed if line.startswith("full report:")]
    command = shlex.split(full_report.removeprefix("full report:").split("  (")[0])
    again = subprocess.run(
        command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert again.returncode == 0 and "fast" in again.stdout, again.stderr
    assert broker.stop(signal.SIGINT) == 0
