"""Secrets never printed: the one redaction function, the log formatter, shadow config."""

from __future__ import annotations

import io
import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from shadowstream.core.config import load_settings
from shadowstream.core.errors import ConfigError
from shadowstream.core.secrets import (
    MASK,
    RedactingFormatter,
    forget_registered_secrets,
    redact_mapping,
    redact_text,
    redact_url,
    register_secret,
    register_url_secrets,
)


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    forget_registered_secrets()
    yield
    forget_registered_secrets()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("ClickHouse at http://alice:S3CRET-pw@127.0.0.1:1 is down", "S3CRET-pw"),
        ("HTTP 401: Authorization: Basic YWxpY2U6aHVudGVyMg== rejected", "YWxpY2U6aHVudGVyMg=="),
        ('{"detail": "bad", "Authorization": "Bearer tok_abcdef123456"}', "tok_abcdef123456"),
        ("Proxy-Authorization: Bearer zzzzzz999999", "zzzzzz999999"),
        ("sasl.password=hunter22hunter, next", "hunter22hunter"),
        ("ssl.key.password: 'kp-value-1'", "kp-value-1"),
        ('{"client_secret": "cs-value-123"}', "cs-value-123"),
        ("api_key=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("key sk-ant-api03-abcdefghijklmnopqrstu in text", "sk-ant-api03-abcdefghijklmnopqrstu"),
        ("my_token: ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
    ],
)
def test_credential_looking_values_are_masked(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert MASK in out


def test_registered_values_are_masked_in_any_text_with_their_basic_form() -> None:
    register_url_secrets("http://bob:pa%24%24word-1@host:8123")
    register_secret("plain-value-xyz")
    text = "echo pa$$word-1 and Ym9iOnBhJCR3b3JkLTE= and plain-value-xyz"
    assert redact_text(text) == f"echo {MASK} and {MASK} and {MASK}"
    assert redact_url("http://bob:pa%24%24word-1@host:8123/x") == f"http://bob:{MASK}@host:8123/x"


def test_ordinary_text_is_left_alone() -> None:
    for text in ("password is required", "token count 42", "tokens_in=10", "a:b@c is no URL"):
        assert redact_text(text) == text


def test_mappings_mask_secret_named_keys_at_any_depth() -> None:
    data = {
        "kafka_options": {"sasl.password": "x1", "ssl.key.password": "x2", "acks": "all"},
        "nested": [{"api_key": "x3", "url": "https://u:x4@h/p"}],
        "gate": {"min_samples": 10},
    }
    out = json.dumps(redact_mapping(data))
    assert not any(s in out for s in ('"x1"', '"x2"', '"x3"', "x4"))
    assert '"acks": "all"' in out and '"min_samples": 10' in out


def test_log_lines_and_tracebacks_are_redacted() -> None:
    register_secret("tb-secret-999")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(logging.Formatter("%(message)s")))
    logger = logging.getLogger("test.secrets.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("failed with http://a:tb-secret-999@host")
        except RuntimeError:
            logger.exception("crash while using tb-secret-999")
    finally:
        logger.removeHandler(handler)
    assert "tb-secret-999" not in stream.getvalue()
    assert "Traceback" in stream.getvalue()


def test_shadow_config_prints_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shadowstream.cli.main import cli

    config = tmp_path / "shadow.toml"
    config.write_text(
        """
clickhouse_url = "http://reader:ch-url-pw-1@clickhouse:8123"
kafka_options = { "security.protocol" = "SASL_SSL", "sasl.username" = "svc", "sasl.password" = "kafka-opt-pw-2", "ssl.key.password" = "ssl-key-pw-3" }

[[challengers]]
name = "remote"
http = { url = "https://bob:http-url-pw-4@model.internal/v1", headers = { "X-Custom" = "static-header-5" }, headers_from_env = { Authorization = "Bearer ${MODEL_KEY}" } }
"""
    )
    monkeypatch.setenv("SHADOW_KAFKA_SECRETS", json.dumps({"sasl.oauthbearer.config": "env-6"}))
    monkeypatch.setenv("SHADOW_CLICKHOUSE_PASSWORD", "ch-pw-7")
    result = CliRunner().invoke(cli, ["--config", str(config), "config"])
    assert result.exit_code == 0, result.output
    for secret in ("ch-url-pw-1", "kafka-opt-pw-2", "ssl-key-pw-3", "http-url-pw-4",
                   "static-header-5", "env-6", "ch-pw-7"):  # fmt: skip
        assert secret not in result.output
    shown = json.loads(result.stdout)  # stderr says which config file was read
    assert shown["kafka_options"]["security.protocol"] == "SASL_SSL"  # sasl.* all masked
    assert shown["challengers"][0]["http"]["headers_from_env"] == {
        "Authorization": "Bearer ${MODEL_KEY}"
    }


def test_broker_url_credentials_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, broker_url="kafka://alice:brk-pw-8@kafka:9092")
    assert "brk-pw-8" not in str(err.value)
    assert "sasl.username" in str(err.value)


def test_faust_gets_the_same_sasl_and_tls_as_librdkafka() -> None:
    from shadowstream.pipeline.kafka_auth import faust_credentials

    assert faust_credentials({}) is None
    creds = faust_credentials(
        {
            "security.protocol": "sasl_ssl",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "alice",
            "sasl.password": "pw",
            "ssl.ca.location": ssl.get_default_verify_paths().cafile or "",
            "ssl.endpoint.identification.algorithm": "none",
        }
    )
    assert creds.protocol.value == "SASL_SSL"
    assert creds.mechanism.value == "SCRAM-SHA-512"
    assert (creds.username, creds.password) == ("alice", "pw")
    assert creds.ssl_context.check_hostname is False
    plain = faust_credentials(
        {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": "u",
            "sasl.password": "p",
        }
    )
    assert plain.protocol.value == "SASL_PLAINTEXT" and plain.ssl_context is None
    assert faust_credentials({"security.protocol": "SSL"}).protocol.value == "SSL"
    with pytest.raises(ConfigError, match="GSSAPI"):
        faust_credentials({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI"})
    with pytest.raises(ConfigError, match=r"needs sasl\.username and sasl\.password"):
        faust_credentials({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"})
    with pytest.raises(ConfigError, match="TLS files"):
        faust_credentials({"security.protocol": "SSL", "ssl.ca.location": "/nonexistent.pem"})
