"""Challenger configuration: what to call, how its answers are compared and judged.

Sections of :class:`shadowstream.core.config.Settings` (``[[challengers]]`` and
``[noise]``); import them from ``shadowstream.core.config`` as before.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shadowstream.core.config_base import StrictSpec

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
CALLABLE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"

ComparatorKind = Literal["exact", "json", "text", "label", "cascade", "semantic", "ranked", "judge"]


class ToolCallSpec(StrictSpec):
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


class ComparatorSpec(StrictSpec):
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


class BudgetSpec(StrictSpec):
    """Spend caps per rolling hour; over budget, requests are skipped (not failed)."""

    tokens_per_hour: int | None = Field(default=None, gt=0)
    cost_per_hour: float | None = Field(default=None, gt=0)


class HttpAdapterSpec(StrictSpec):
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
class BatchApiSpec(StrictSpec):
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


class JudgeSpec(StrictSpec):
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


class ChallengerSpec(StrictSpec):
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


class NoiseSpec(StrictSpec):
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
