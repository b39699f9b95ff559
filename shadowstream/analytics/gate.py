"""The promotion gate: is a challenger ready to ship?

Every criterion is judged on confidence bounds, never on a point estimate
(see :mod:`shadowstream.analytics.criteria.base`): pass when the pessimistic
bound meets the threshold, FAIL when even the optimistic bound misses it,
undecided otherwise. The criteria are pluggable units
(:data:`shadowstream.analytics.criteria.DEFAULT_CRITERIA`):

* agreement with the champion - beyond the challenger's own A/A control's
  disagreement when it has one (``agreement_baseline = "auto"``);
* error-rate increase over the champion, paired on the same requests;
* latency p95 regression against the control (same shadow path) when it has
  measured latency, else against the champion (``latency_baseline = "auto"``);
* invalid-format rate (skipped without an output schema);
* agreement in every attribute slice, Bonferroni over the slices tested
  (on by default: ``min_slice_agreement = 0.90``, the overall bar);
* divergence above the floor (optional);
* resource use (``[gate.resources]``, off by default: p95 tokens/tool calls/cost
  against the champion's, share over a limit, projected monthly cost;
  :mod:`shadowstream.analytics.gate_resources`). Fixed-sample bounds, so
  ``shadow gate`` judges them and ``shadow watch`` does not.

Each challenger is paired with its own endpoint group's control
(:mod:`shadowstream.analytics.pairing`). ``shadow gate`` takes one look with
fixed-sample intervals; ``shadow watch`` evaluates the same criteria with
confidence sequences (:class:`GatePolicy` with anytime-valid bounds).

Verdict per challenger: fewer than ``min_samples`` comparisons -> not enough
data; any FAIL -> fail; any undecided -> not enough data; else promote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shadowstream.analytics.bounds import ANYTIME_VALID, FIXED_SAMPLE, BoundMethod
from shadowstream.analytics.catalog import check_selection, load_catalog
from shadowstream.analytics.criteria import DEFAULT_CRITERIA, Criterion, GateContext, GateCriterion
from shadowstream.analytics.model import Counts
from shadowstream.analytics.pairing import endpoint_mix, pair_controls
from shadowstream.analytics.queries import Scope, require_schema
from shadowstream.core.decision_config import GateSpec

if TYPE_CHECKING:
    from shadowstream.analytics.resources import ResourceOptions

Verdict = Literal["promote", "fail", "not enough data"]
# the verdicts' exit codes (errors have codes of their own: shadowstream.cli.exit_codes)
EXIT_CODES: dict[Verdict, int] = {"promote": 0, "fail": 1, "not enough data": 2}

__all__ = [
    "EXIT_CODES",
    "Criterion",
    "GatePolicy",
    "GateResult",
    "evaluate",
    "overall_exit_code",
    "run_gate",
    "watch_policy",
]


@dataclass(frozen=True)
class GateResult:
    experiment_id: str
    challenger: str
    samples: int
    confidence: float
    criteria: list[Criterion] = field(default_factory=list)
    control: str = ""  # the A/A control this challenger was paired with ("" = none)
    method: str = FIXED_SAMPLE.name

    @property
    def verdict(self) -> Verdict:
        statuses = [c.status for c in self.criteria]
        if self.criteria and self.criteria[0].name == "samples" and statuses[0] != "pass":
            return "not enough data"
        if "fail" in statuses:
            return "fail"
        if "undecided" in statuses:
            return "not enough data"
        return "promote"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def undecided(self) -> list[str]:
        return [c.name for c in self.criteria if c.status == "undecided"]

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status == "fail"]

    @property
    def regressions(self) -> list[Criterion]:
        """Criteria where the challenger is confidently worse than its baseline at all."""
        return [c for c in self.criteria if c.regressed]


@dataclass(frozen=True)
class GatePolicy:
    """How bounds are computed: one look (gate) or every look (watch)."""

    bounds: BoundMethod = FIXED_SAMPLE
    alpha: float | None = None  # per criterion; None: 1 - GateSpec.confidence
    slice_family: int = 0  # anytime-valid slice tests: alpha / max(slices, this)
    criteria: tuple[GateCriterion, ...] = DEFAULT_CRITERIA


def watch_policy(spec: GateSpec, confidence: float, max_slices: int) -> GatePolicy:
    """Anytime-valid bounds, the watch's alpha split evenly over the enabled criteria."""
    enabled = [k for k in DEFAULT_CRITERIA if k.enabled(spec)]
    return GatePolicy(ANYTIME_VALID, (1 - confidence) / max(len(enabled), 1), max_slices)


def overall_exit_code(results: list[GateResult]) -> int:
    """1 if any challenger fails, else 2 if any lacks data, else 0."""
    codes = {r.exit_code for r in results}
    if not results:
        return EXIT_CODES["not enough data"]
    if EXIT_CODES["fail"] in codes:
        return EXIT_CODES["fail"]
    if EXIT_CODES["not enough data"] in codes:
        return EXIT_CODES["not enough data"]
    return EXIT_CODES["promote"]


def samples_criterion(c: Counts, spec: GateSpec) -> Criterion:
    ok = c.comparisons >= spec.min_samples
    return Criterion(
        "samples",
        f">= {spec.min_samples}",
        float(c.comparisons),
        float(c.comparisons),
        float(c.comparisons),
        "pass" if ok else "undecided",
        unit="count",
        note="" if ok else f"{spec.min_samples - c.comparisons} more comparisons needed",
    )


def evaluate(
    scope: Scope,
    c: Counts,
    control: Counts | None,
    spec: GateSpec,
    control_name: str,
    policy: GatePolicy | None = None,
    resources: ResourceOptions | None = None,
) -> GateResult:
    """Judge one (experiment, challenger) against its control."""
    policy = policy or GatePolicy()
    alpha = policy.alpha if policy.alpha is not None else 1 - spec.confidence
    criteria = [samples_criterion(c, spec)]
    if c.comparisons > 0:
        context = GateContext(
            scope,
            c,
            spec,
            policy.bounds,
            alpha,
            control if control_name else None,
            control_name if control is not None else "",
            policy.slice_family,
        )
        criteria += [k.judge(context) for k in policy.criteria if k.enabled(spec)]
        if policy.bounds is FIXED_SAMPLE:  # [gate.resources], off by default; fixed-sample
            from shadowstream.analytics.gate_resources import resource_criteria

            criteria += resource_criteria(scope, c, spec, resources)
    return GateResult(
        c.experiment_id,
        c.challenger,
        c.comparisons,
        spec.confidence,
        criteria,
        control_name if control is not None else "",
        policy.bounds.name,
    )


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def run_gate(
    scope: Scope,
    spec: GateSpec,
    controls: str | Sequence[str],
    challengers: str | Sequence[str] | None = None,
    configured: Sequence[str] = (),
    policy: GatePolicy | None = None,
    resources: ResourceOptions | None = None,
) -> list[GateResult]:
    """Gate the given challengers, or every challenger but the controls, per experiment.

    Configured challengers with no comparisons in range yet are gated too (and
    get "not enough data"); a name that is neither configured nor in the data
    is a mistake (NotFoundError), not a wait. Each challenger is judged against
    its own endpoint group's control (analytics.pairing).
    """
    from shadowstream.analytics.report import fetch_counts

    require_schema(scope.warehouse)
    scope = Scope(scope.warehouse, scope.window.snapped(), scope.experiment, scope.exact)
    counts = fetch_counts(scope)
    control_names = _names(controls)
    wanted = _names(challengers)
    seen = {c.challenger for c in counts}
    unknown = [n for n in wanted if n not in seen | set(configured)]
    if unknown:  # nothing in range: a mistake, unless it has data at other times
        check_selection(load_catalog(scope.warehouse), "", unknown, configured)
    names = wanted or sorted((seen | set(configured)) - set(control_names))
    experiments = sorted({c.experiment_id for c in counts}) or [scope.experiment or "live"]
    if scope.experiment:
        experiments = [scope.experiment]
    by_key = {(c.experiment_id, c.challenger): c for c in counts}
    keys: list[tuple[str, str]] = []
    for name in names:
        found = [(e, name) for e in experiments if (e, name) in by_key]
        # nothing yet: one "not enough data" result
        keys += found or [(experiments[0] if len(experiments) == 1 else "live", name)]
    several = len({n for n in control_names if any(k[1] == n for k in by_key)}) > 1
    mix = endpoint_mix(scope) if several else {}
    pairs = pair_controls([*by_key, *keys], control_names, mix)
    results = []
    for key in keys:
        c = by_key.get(key) or Counts(experiment_id=key[0], challenger=key[1])
        control_name = pairs.get(key, "")
        control = by_key.get((key[0], control_name)) if control_name else None
        results.append(evaluate(scope, c, control, spec, control_name, policy, resources))
    return results
