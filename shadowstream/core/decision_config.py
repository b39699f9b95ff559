"""Decision configuration: resources in reports, the promotion gate, the continuous watch.

Sections of :class:`shadowstream.core.config.Settings` (``[resources]``,
``[gate]``, ``[watch]``); import them from ``shadowstream.core.config`` as before.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from shadowstream.core.config_base import StrictSpec

# -- resources: limits, pricing, and the gate's resource criteria (docs/resources.md) ---------
ResourceMetric = Literal["tokens_in", "tokens_out", "tool_calls", "cost"]


class ResourceSpec(StrictSpec):
    """Resources in reports: limits for "share of requests over", and the bill's pricing.

    ``limits``: per metric, a value above which a response counts as over
    (``{tokens_out = 800}``); ``batch_price_factor``: the batch price as a
    share of the live one (batch APIs typically charge half), applied to
    batch experiments' projected cost; ``days_per_month`` for monthly totals.
    """

    limits: dict[ResourceMetric, float] = Field(default_factory=dict)
    batch_price_factor: float = Field(default=0.5, gt=0, le=10)
    days_per_month: float = Field(default=30.0, gt=0, le=31)


class OverLimitSpec(StrictSpec):
    limit: float = Field(ge=0)  # a response above it is over
    max_share: float = Field(ge=0, le=1)  # the largest share of responses allowed over


class ResourceGateSpec(StrictSpec):
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


class GateSpec(StrictSpec):
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


class WatchSpec(StrictSpec):
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
