"""One validated settings object, read from a TOML file and ``SHADOW_*`` env vars.

Precedence (highest first): explicit overrides passed to :func:`load_settings`,
environment variables, the config file, defaults.

    SHADOW_CONFIG=shadow.toml          # optional file
    SHADOW_BROKER_URL=kafka://kafka:9092
    SHADOW_CLICKHOUSE_URL=http://clickhouse:8123
    SHADOW_CHALLENGERS='[{"name": "fast", "callable": "models:fast"}]'
    SHADOW_GATE__MIN_SAMPLES=1000      # nested keys use a double underscore

Secrets (Kafka SASL passwords, the ClickHouse password) are ``SecretStr`` and
never appear in ``repr``/logs; URLs are logged through :func:`redact_url`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# the sections live in their own modules; every one is importable from here too
from shadowstream.core.challenger_config import (
    CALLABLE_PATTERN,
    NAME_PATTERN,
    BatchApiSpec,
    BudgetSpec,
    ChallengerSpec,
    ComparatorKind,
    ComparatorSpec,
    HttpAdapterSpec,
    JudgeSpec,
    NoiseSpec,
    ToolCallSpec,
)
from shadowstream.core.decision_config import (
    GateSpec,
    OverLimitSpec,
    ResourceGateSpec,
    ResourceMetric,
    ResourceSpec,
    WatchSpec,
)
from shadowstream.core.errors import ConfigError
from shadowstream.core.kafka import DEFAULT_SESSION_TIMEOUT_MS, KafkaClientConfig
from shadowstream.core.secrets import (
    is_secret_key,
    redact_text,
    redact_url,
    register_mapping_secrets,
    register_secret,
    register_url_secrets,
)

__all__ = [
    "CALLABLE_PATTERN",
    "CONFIG_FILE_NAME",
    "NAME_PATTERN",
    "BatchApiSpec",
    "BudgetSpec",
    "ChallengerSpec",
    "ComparatorKind",
    "ComparatorSpec",
    "GateSpec",
    "HttpAdapterSpec",
    "JudgeSpec",
    "NoiseSpec",
    "OverLimitSpec",
    "ResourceGateSpec",
    "ResourceMetric",
    "ResourceSpec",
    "Settings",
    "ToolCallSpec",
    "WatchSpec",
    "bootstrap_servers",
    "find_config_file",
    "kafka_client_config",
    "load_settings",
    "redact_url",
    "register_settings_secrets",
]


class Settings(BaseSettings):
    """Everything a Shadowstream process reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="SHADOW_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # -- Kafka -------------------------------------------------------------
    broker_url: str = "kafka://localhost:9092"
    kafka_options: dict[str, str] = Field(default_factory=dict)
    kafka_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # None: 10 s, or 2 s on the embedded broker (docs/health.md); set it to override both
    kafka_session_timeout_ms: int | None = Field(default=None, ge=1_000, le=300_000)
    topic_prefix: str = Field(default="shadow", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=10)

    # -- ClickHouse --------------------------------------------------------
    clickhouse_url: str = "chdb://shadow-data/chdb"
    clickhouse_database: str = Field(default="shadow", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    clickhouse_password: SecretStr | None = None
    retention_days: int = Field(default=90, ge=1, le=3650)

    # -- join --------------------------------------------------------------
    join_window_seconds: float = Field(default=30.0, gt=0, le=86_400)
    late_retention_seconds: float = Field(default=120.0, ge=0, le=86_400)
    commit_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    stats_interval_seconds: float = Field(default=10.0, gt=0, le=3600)
    max_message_bytes: int = Field(default=1_000_000, ge=1_024)
    # -- poison pills: an event whose timestamp_us is older than retention_days (the
    # TTL would drop it as it is inserted) or more than this far ahead of the agent's
    # clock is dead-lettered as bad_timestamp by the router and the sink
    max_clock_skew_seconds: float = Field(default=86_400.0, ge=0, le=31_536_000)

    # -- schema evolution (docs/schemas.md) ------------------------------------
    # how long a reader waits for an unknown writer schema to appear on the schema
    # topic (writers publish before their first event: this only covers the race)
    schema_lookup_wait_seconds: float = Field(default=5.0, ge=0, le=60)

    # -- OpenTelemetry (docs/integration.md) -------------------------------------
    # run each challenger call in a span of its own, parented to the request's trace
    # (needs opentelemetry-api; spans go to the process's global tracer provider)
    otel_challenger_spans: bool = False
    # reports link each example to its trace: e.g. "https://jaeger.example/trace/{trace_id}"
    trace_url_template: str | None = None

    # -- challengers and endpoints -------------------------------------------
    challengers: list[ChallengerSpec] = Field(default_factory=list)
    shadow_endpoints: list[str] = Field(default_factory=lambda: ["*"])
    write_endpoints: list[str] = Field(default_factory=list)

    # -- sink --------------------------------------------------------------
    sink_batch_rows: int = Field(default=20_000, ge=1, le=1_000_000)
    # bounds how long a comparison waits before it is queryable; the next batch fills
    # while one is stored, so consumption does not stop for it (each insert has a
    # fixed cost in ClickHouse: ~40 ms for comparisons, measured alone)
    sink_batch_seconds: float = Field(default=0.5, gt=0, le=300)
    sink_raw_events: bool = True

    # -- gate --------------------------------------------------------------
    gate: GateSpec = Field(default_factory=GateSpec)
    # -- continuous watch (shadow watch) -----------------------------------------
    watch: WatchSpec = Field(default_factory=WatchSpec)

    # -- comparison ------------------------------------------------------------
    noise: NoiseSpec = Field(default_factory=NoiseSpec)

    # -- resources in reports (limits, pricing) ------------------------------------
    resources: ResourceSpec = Field(default_factory=ResourceSpec)
    # -- PII redaction (issue 14) ----------------------------------------------
    # The [redaction] table: rules by JSON path, detectors, hash key env var. The same
    # table configures the SDK (shadowstream.producers.redaction.RedactionPolicy), which
    # validates it; agents apply its "storage_only" rules and the challenger-side ones.
    redaction: dict[str, Any] = Field(default_factory=dict)
    # -- health (docs/health.md) -------------------------------------------------
    # /livez fails when an agent made no progress this long while the broker answered
    health_stall_seconds: float = Field(default=60.0, gt=0, le=3600)

    # -- process -----------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int | None = Field(default=None, ge=1, le=65_535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        bootstrap_servers(value)  # raises ValueError on garbage
        return value

    @field_validator("trace_url_template")
    @classmethod
    def _trace_url(cls, value: str | None) -> str | None:
        if value is not None and "{trace_id}" not in value:
            raise ValueError("must contain {trace_id}")
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_url(cls, value: str) -> str:
        if not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must be chdb:///path, http://host:port or https://host:port")
        return value

    @model_validator(mode="after")
    def _unique_challengers(self) -> Settings:
        names = [c.name for c in self.challengers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate challenger names: {', '.join(dupes)}")
        return self

    def challenger(self, name: str) -> ChallengerSpec:
        for spec in self.challengers:
            if spec.name == name:
                return spec
        known = ", ".join(c.name for c in self.challengers) or "none configured"
        raise ConfigError(f"no challenger named {name!r} (known: {known})")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # toml_file is only set on the per-file subclass load_settings() builds.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


# -- config file discovery (the `shadow` command): --config, $SHADOW_CONFIG, ./shadow.toml
CONFIG_FILE_NAME = "shadow.toml"


def find_config_file(config_file: str | Path | None = None) -> Path | None:
    """The config file a command uses: ``config_file`` (``--config``), else
    ``$SHADOW_CONFIG``, else ``./shadow.toml`` if the working directory has one."""
    source = config_file if config_file is not None else os.environ.get("SHADOW_CONFIG")
    if source:
        return Path(source)
    local = Path(CONFIG_FILE_NAME)
    return local if local.is_file() else None


def load_settings(
    config_file: str | Path | None = None, *, discover: bool = False, **overrides: Any
) -> Settings:
    """Build the settings, turning validation problems into one readable ConfigError.

    ``config_file`` defaults to ``$SHADOW_CONFIG``; with ``discover`` (the CLI),
    then to ``./shadow.toml``; without any, only env vars and defaults apply.
    """
    if discover:
        found = find_config_file(config_file)
        source: str | Path | None = found
    else:
        source = config_file if config_file is not None else os.environ.get("SHADOW_CONFIG")
    settings_cls: type[Settings] = Settings
    path = Path(source) if source else None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        toml_file = path

        class _FileSettings(Settings):
            model_config = SettingsConfigDict(toml_file=toml_file)

        settings_cls = _FileSettings
    try:
        settings = settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(redact_text(_format_validation_error(exc))) from None
    except (OSError, ValueError) as exc:  # unreadable or unparsable TOML file
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    register_settings_secrets(settings)
    return settings


def register_settings_secrets(settings: Settings) -> None:
    """Make every secret these settings hold unprintable (see shadowstream.core.secrets)."""
    password = settings.clickhouse_password
    if password is not None:
        register_secret(password.get_secret_value())
    for secret in settings.kafka_secrets.values():
        register_secret(secret.get_secret_value())
    register_mapping_secrets(settings.kafka_options)
    register_url_secrets(settings.clickhouse_url)
    register_url_secrets(settings.broker_url)
    for spec in settings.challengers:
        if spec.http is None:
            continue
        register_url_secrets(spec.http.url)
        for header, value in spec.http.headers.items():
            if is_secret_key(header) or header.lower() in ("x-api-key", "api-key"):
                register_secret(value)


def _format_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        problems.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://a:9092,b:9092`` (or a bare ``a:9092``) -> ``a:9092,b:9092``."""
    url = broker_url.strip()
    for scheme in ("kafka://", "tcp://", "plaintext://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
            break
    hosts = [h for h in url.rstrip("/").split(",") if h]
    if not hosts:
        raise ValueError(f"no broker address in {broker_url!r}")
    for host in hosts:
        if "@" in host:
            raise ValueError(
                "broker addresses take no credentials: set sasl.username in kafka_options "
                "and sasl.password in kafka_secrets"
            )
        if not re.fullmatch(r"[\w.\-]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5}", host):
            raise ValueError(f"broker address must look like host:port, got {host!r}")
    return ",".join(hosts)


def kafka_client_config(settings: Settings) -> KafkaClientConfig:
    """The confluent-kafka settings for this deployment (secrets merged in, never logged)."""
    options = dict(settings.kafka_options)
    options.update({k: v.get_secret_value() for k, v in settings.kafka_secrets.items()})
    return KafkaClientConfig(
        bootstrap_servers=bootstrap_servers(settings.broker_url),
        options=options,
        session_timeout_ms=settings.kafka_session_timeout_ms or DEFAULT_SESSION_TIMEOUT_MS,
    )
