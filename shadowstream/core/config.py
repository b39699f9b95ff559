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
    BaseModel,
    ConfigDict,
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

from shadowstream.core.errors import ConfigError
from shadowstream.core.kafka import DEFAULT_SESSION_TIMEOUT_MS, KafkaClientConfig
from shadowstream.core.secrets import (
    is_secret_key,
    redact_text,
    register_mapping_secrets,
    register_secret,
    register_url_secrets,
)
from shadowstream.core.secrets import redact_url as redact_url

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
CALLABLE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"

ComparatorKind = Literal["exact", "json", "text", "label", "cascade", "semantic", "ranked", "judge"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallSpec(_Strict):
    """How the tool calls in ``tool_trace`` (agent/LLM answers) are compared.

    ``mode``: ``report`` (default) lists tool-call differences in the diff
    summary and paths without changing ``diverged``; ``diverge`` also counts
    them as divergence; ``off`` skips them. ``tool_calls = "diverge"`` is
    shorthand for ``{mode = "diverge"}``. The other keys are options of
    shadowstream.stream_agents.comparators.ToolCallComparator.
    """

    mode: Literal["off", "report", "diverge"] = "report"
    ordered: bool = True
    compare_arguments: bool = True
    ignore_arguments: list[str] = Field(default_factory=list)
    abs_tol: float = Field(default=0.0, ge=0)
    rel_tol: float = Field(default=0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"mode": value}
        return value


class ComparatorSpec(_Strict):
    """Which comparator decides "diverged" for a challenger, and its options.

    ``comparator = "json"`` in a config file is shorthand for ``{kind = "json"}``.
    """

    kind: ComparatorKind = "json"
    options: dict[str, Any] = Field(default_factory=dict)
    tool_calls: ToolCallSpec = Field(default_factory=ToolCallSpec)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"kind": value}
        return value


class BudgetSpec(_Strict):
    """Spend caps per rolling hour; over budget, requests are skipped (not failed)."""

    tokens_per_hour: int | None = Field(default=None, gt=0)
    cost_per_hour: float | None = Field(default=None, gt=0)


class HttpAdapterSpec(_Strict):
    """A challenger served over HTTP (see shadowstream.stream_agents.challengers.http_adapter)."""

    url: str
    method: Literal["GET", "POST", "PUT"] = "POST"
    # header name -> name of the env var that holds its value (secrets stay in env)
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    # how the request body is built: "payload" sends the input payload as JSON;
    # a dict is a template whose string values "$payload", "$payload.a.b",
    # "$request_id", "$endpoint", "$tool_trace" are substituted.
    request_body: str | dict[str, Any] = "payload"
    # dotted paths into the JSON response
    output_path: str | None = None
    tokens_in_path: str | None = None
    tokens_out_path: str | None = None
    tool_calls_path: str | None = None
    cost_path: str | None = None
    # the challenger's own tool calls and results (compared with the champion's)
    tool_trace_path: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


# -- LLM challengers: provider batch APIs and the LLM judge (docs/llm.md) ------------------
class BatchApiSpec(_Strict):
    """Batch experiments of this challenger go through a provider's batch API (50% price)."""

    provider: Literal["openai", "anthropic"]
    base_url: str | None = None  # default: the provider's; any server implementing the API
    api_key_env: str | None = None  # default OPENAI_API_KEY / ANTHROPIC_API_KEY
    model: str | None = None  # default: the challenger's model (or name)
    endpoint: str = "/v1/chat/completions"  # OpenAI: the batch's endpoint
    # body template ($payload, ${payload.text}, ...; default: a chat/messages body)
    request_body: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)  # merged into every body
    output_path: str | None = None  # default: the answer's text
    output_json: bool = False  # parse a text answer that is JSON
    tokens_in_path: str | None = None
    tokens_out_path: str | None = None
    # batch prices per 1k tokens; unset: the live prices times price_factor
    cost_per_1k_tokens_in: float | None = Field(default=None, ge=0)
    cost_per_1k_tokens_out: float | None = Field(default=None, ge=0)
    price_factor: float = Field(default=0.5, ge=0, le=1)
    max_requests_per_batch: int | None = Field(default=None, ge=1, le=100_000)
    max_bytes_per_batch: int | None = Field(default=None, ge=1_000, le=256_000_000)
    poll_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600)  # per HTTP call


class JudgeSpec(_Strict):
    """The ``judge`` comparator: an OpenAI-compatible chat model compares the two answers."""

    model: str
    base_url: str | None = None  # default: OpenAI's; any OpenAI-compatible server
    api_key_env: str | None = "OPENAI_API_KEY"  # "" or None: a server without authentication
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    rubric: str = (
        "Judge which answer serves the input better: correctness first, then completeness, "
        "then clarity. Answers that differ only in wording or formatting are a tie."
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=400, ge=16, le=32_000)
    json_mode: bool = True  # ask for response_format json_object
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    retries: int = Field(default=1, ge=0, le=5)  # per order, on errors and malformed answers
    concurrency: int = Field(default=4, ge=1, le=1_000)
    budget: BudgetSpec | None = None  # the judge's own tokens/cost per hour
    cost_per_1k_tokens_in: float | None = Field(default=None, ge=0)
    cost_per_1k_tokens_out: float | None = Field(default=None, ge=0)
    max_chars: int = Field(default=20_000, ge=100)  # of input and each answer in the prompt
    cache_size: int = Field(default=100_000, ge=0)


class ChallengerSpec(_Strict):
    """One challenger: what to call, how much traffic it gets, how it is judged."""

    name: str = Field(pattern=NAME_PATTERN)
    callable: str | None = Field(default=None, pattern=CALLABLE_PATTERN)
    http: HttpAdapterSpec | None = None
    model: str | None = None
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=3600.0)
    concurrency: int = Field(default=8, ge=1, le=10_000)
    comparator: ComparatorSpec = Field(default_factory=ComparatorSpec)
    max_rps: float | None = Field(default=None, gt=0)
    budget: BudgetSpec | None = None
    retries: int = Field(default=0, ge=0, le=5)
    control: bool = False
    endpoints: list[str] = Field(default_factory=lambda: ["*"])
    output_schema: dict[str, Any] | None = None
    # record-replay: wait for the champion's response and hand its tool trace
    # (calls and results) to the challenger instead of letting it call tools
    replay_tools: bool = False
    # cost of an answer that does not report one (for budgets and reports)
    cost_per_1k_tokens_in: float | None = Field(default=None, ge=0)
    cost_per_1k_tokens_out: float | None = Field(default=None, ge=0)
    # batch experiments through a provider batch API; alone: a batch-only challenger
    batch_api: BatchApiSpec | None = None

    @model_validator(mode="after")
    def _one_adapter(self) -> ChallengerSpec:
        if self.callable is not None and self.http is not None:
            raise ValueError(f"challenger {self.name!r}: set 'callable' or 'http', not both")
        if self.callable is None and self.http is None and self.batch_api is None:
            raise ValueError(
                f"challenger {self.name!r}: set exactly one of 'callable' "
                "(module:function) or 'http' (or 'batch_api' for a batch-only challenger)"
            )
        return self

    @property
    def live(self) -> bool:
        """Whether a worker can call it (False: batch-only, through its batch API)."""
        return self.callable is not None or self.http is not None

    @property
    def model_id(self) -> str:
        return self.model or self.name


# -- resources: limits, pricing, and the gate's resource criteria (docs/resources.md) ---------
ResourceMetric = Literal["tokens_in", "tokens_out", "tool_calls", "cost"]


class ResourceSpec(_Strict):
    """Resources in reports: limits for "share of requests over", and the bill's pricing.

    ``limits``: per metric, a value above which a response counts as over
    (``{tokens_out = 800}``); ``batch_price_factor``: the batch price as a
    share of the live one (batch APIs typically charge half), applied to
    batch experiments' projected cost; ``days_per_month`` for monthly totals.
    """

    limits: dict[ResourceMetric, float] = Field(default_factory=dict)
    batch_price_factor: float = Field(default=0.5, gt=0, le=10)
    days_per_month: float = Field(default=30.0, gt=0, le=31)


class OverLimitSpec(_Strict):
    limit: float = Field(ge=0)  # a response above it is over
    max_share: float = Field(ge=0, le=1)  # the largest share of responses allowed over


class ResourceGateSpec(_Strict):
    """Gate criteria on resource use; every one is off unless set.

    ``max_p95_increase_pct``: per metric, how far the challenger's p95 may rise
    above the champion's (``{tokens_out = 20}``: +20%). ``over_limit``: per
    metric, ``{limit, max_share}`` (``{tokens_out = {limit = 800, max_share =
    0.05}}``). ``max_monthly_cost``: the challenger's projected monthly cost if
    promoted (docs/resources.md).
    """

    max_p95_increase_pct: dict[ResourceMetric, float] = Field(default_factory=dict)
    over_limit: dict[ResourceMetric, OverLimitSpec] = Field(default_factory=dict)
    max_monthly_cost: float | None = Field(default=None, ge=0)

    @property
    def enabled(self) -> bool:
        return bool(self.max_p95_increase_pct or self.over_limit) or (
            self.max_monthly_cost is not None
        )


class GateSpec(_Strict):
    """Promotion thresholds; every check uses a confidence bound.

    The defaults are meant to give the right verdict with no ``[gate]`` section
    at all; docs/decisions.md explains each one.
    """

    max_latency_p95_regression_pct: float = Field(default=10.0, ge=0)
    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1)
    min_agreement: float = Field(default=0.90, ge=0, le=1)
    max_invalid_format_rate: float = Field(default=0.01, ge=0, le=1)
    min_samples: int = Field(default=200, ge=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # optional: max divergence above the control's (A/A noise floor), e.g. 0.02
    max_divergence_above_floor: float | None = Field(default=None, ge=0, le=1)
    # agreement required in every attribute slice (and endpoint) with at least
    # min_slice_samples compared pairs, Bonferroni over the slices tested: catches a
    # challenger that only breaks on, say, language=de. None switches it off.
    min_slice_agreement: float | None = Field(default=0.90, ge=0, le=1)
    min_slice_samples: int = Field(default=100, ge=1)
    # latency p95 compared with: "control" (the champion model timed on the same shadow
    # path as the challengers), "champion" (as production reported it), or "auto": the
    # challenger's own control when it has measured latency, else the champion
    latency_baseline: Literal["auto", "champion", "control"] = "auto"
    # agreement (overall and per slice) judged as is ("absolute"), or "auto": beyond the
    # disagreement of the challenger's own control (A/A) when there is one, so a champion
    # that disagrees with itself does not fail every challenger
    agreement_baseline: Literal["auto", "absolute"] = "auto"
    # resource use (tokens, tool calls, cost): off unless set, see ResourceGateSpec
    resources: ResourceGateSpec = Field(default_factory=ResourceGateSpec)


class WatchSpec(_Strict):
    """``shadow watch``: continuous re-evaluation with anytime-valid statistics."""

    interval_seconds: float = Field(default=60.0, ge=1, le=86_400)
    # probability that a challenger no worse than its baseline never raises an alarm
    # during the whole watch, however long it runs (split over criteria and slices)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # POSTed on every verdict change and regression; the URL is a secret (Slack's are)
    webhook_url: SecretStr | None = None
    webhook_format: Literal["json", "slack"] = "json"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # slices are tested at alpha / max_slices each (fixed in advance, as anytime
    # validity needs); more slices than this are still tested, less strictly
    max_slices: int = Field(default=100, ge=1, le=100_000)


class NoiseSpec(_Strict):
    """Learning noisy JSON paths from ``control`` challengers (see shadowstream.stream_agents.noise).

    A path that differs between champion and control in at least ``min_rate``
    of at least ``min_samples`` comparisons is left out of the other
    challengers' divergence on that endpoint (and listed in ignored_paths).
    """

    enabled: bool = True
    min_rate: float = Field(default=0.2, gt=0, le=1)
    min_samples: int = Field(default=50, ge=1)
    window: int = Field(default=10_000, ge=10)
    max_paths: int = Field(default=1_000, ge=1)
    per_endpoint: bool = True


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
