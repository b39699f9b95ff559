"""Settings: one validated object from a TOML file and SHADOW_* env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowstream.core.config import bootstrap_servers, load_settings, redact_url
from shadowstream.core.errors import ConfigError

TOML = """
broker_url = "kafka://kafka-1:9092,kafka-2:9092"
clickhouse_url = "http://shadow:s3cret@clickhouse:8123"
partitions = 12
join_window_seconds = 20

[[challengers]]
name = "distilled"
callable = "models.distilled:predict"
sample_rate = 0.25
timeout_seconds = 2
concurrency = 32
comparator = "exact"

[[challengers]]
name = "remote"
sample_rate = 0.1
[challengers.http]
url = "https://models.internal/v2/predict"
headers_from_env = { Authorization = "MODEL_TOKEN" }

[gate]
min_samples = 1000
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "shadow.toml"
    path.write_text(TOML)
    return path


def test_file_values_are_loaded(config_file: Path) -> None:
    settings = load_settings(config_file)
    assert settings.partitions == 12
    assert settings.join_window_seconds == 20
    assert [c.name for c in settings.challengers] == ["distilled", "remote"]
    assert settings.challengers[0].comparator.kind == "exact"
    assert settings.challengers[1].http is not None
    assert settings.gate.min_samples == 1000
    assert bootstrap_servers(settings.broker_url) == "kafka-1:9092,kafka-2:9092"


def test_env_vars_override_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHADOW_PARTITIONS", "3")
    monkeypatch.setenv("SHADOW_GATE__MIN_SAMPLES", "7")
    monkeypatch.setenv("SHADOW_CONFIG", str(config_file))
    settings = load_settings()
    assert settings.partitions == 3
    assert settings.gate.min_samples == 7


def test_challengers_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHADOW_CHALLENGERS", '[{"name": "a", "callable": "m:f"}]')
    settings = load_settings()
    assert settings.challenger("a").callable == "m:f"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"partitions": 0}, "partitions"),
        ({"broker_url": "not a url"}, "broker_url"),
        ({"clickhouse_url": "mysql://x"}, "clickhouse_url"),
        ({"challengers": [{"name": "a b", "callable": "m:f"}]}, "challengers.0.name"),
        ({"challengers": [{"name": "a", "callable": "m:f", "sample_rate": 1.5}]}, "sample_rate"),
        ({"challengers": [{"name": "a"}]}, "exactly one"),
        (
            {"challengers": [{"name": "a", "callable": "m:f"}, {"name": "a", "callable": "m:g"}]},
            "duplicate",
        ),
        ({"challengers": [{"name": "a", "callable": "m:f", "comparator": "magic"}]}, "comparator"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_invalid_values_give_one_readable_error(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, **overrides)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_unparsable_config_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("partitions = = 3")
    with pytest.raises(ConfigError):
        load_settings(bad)


def test_unknown_challenger_name_lists_the_known_ones(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="known: distilled, remote"):
        load_settings(config_file).challenger("nope")


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("SHADOW_CLICKHOUSE_PASSWORD", "hunter2")
    monkeypatch.setenv("SHADOW_KAFKA_SECRETS", '{"sasl.password": "topsecret"}')
    settings = load_settings(config_file)
    assert "hunter2" not in repr(settings)
    assert "topsecret" not in repr(settings)
    assert redact_url(settings.clickhouse_url) == "http://shadow:***@clickhouse:8123"
    from shadowstream.core.config import kafka_client_config

    assert kafka_client_config(settings).options["sasl.password"] == "topsecret"
