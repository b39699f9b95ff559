"""The promotion gate: declared thresholds, judged on confidence bounds.

Every criterion has a one-sided confidence bound on each side of its estimate
(at ``GateSpec.confidence``):

* **pass** when the pessimistic bound meets the threshold (we are confident
  the challenger is good enough),
* **fail** when even the optimistic bound misses it (we are confident it is not),
* **undecided** otherwise: more data will settle it.

Verdict: fewer comparisons than ``min_samples`` -> not enough data (exit 2);
any criterion failed -> fail (exit 1); any undecided -> not enough data
(exit 2); all passed -> promote (exit 0).

Criteria and bounds:

* agreement (1 - divergence among compared responses): Wilson score bounds;
* error-rate increase (challenger failures - champion failures, on the same
  requests): Newcombe's paired interval (a failure is error/timeout, and for the
  challenger also missing: a challenger that never answers counts as failing);
* latency p95 regression: distribution-free order-statistic bounds of each p95
  (binomial method), each at confidence 1 - alpha/2 so the ratio's bound holds
  with at least 1 - alpha (Bonferroni): pessimistic = challenger's upper bound
  / baseline's lower bound - 1. The baseline is the champion (latency as
  production reported it) or, with ``latency_baseline = "control"``, the
  control challenger: the champion model timed on the same shadow path, so
  queueing and network overhead of that path cancel out;
* invalid-format rate of the challenger: Wilson bounds (skipped when no output
  format check is configured);
* divergence above the control's (optional): Newcombe's interval for the
  difference of two proportions;
* agreement in every attribute slice (optional): Wilson bounds per slice,
  Bonferroni over the slices tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shadowstream.analytics.model import Counts
from shadowstream.analytics.queries import Scope, require_schema
from shadowstream.analytics.stats import (
    newcombe_diff,
    newcombe_paired_diff,
    one_sided_z,
    quantile_ci_levels,
    two_sided_confidence_for_one_sided,
    wilson_z,
)
from shadowstream.core.config import GateSpec
from shadowstream.core.errors import GateError

if TYPE_CHECKING:
    from shadowstream.analytics.resources import ResourceOptions

Status = Literal["pass", "fail", "undecided", "skipped"]
Verdict = Literal["promote", "fail", "not enough data"]
EXIT_CODES: dict[Verdict, int] = {"promote": 0, "fail": 1, "not enough data": 2}
LATENCY_QUANTILE = 0.95


@dataclass(frozen=True)
class Criterion:
    name: str
    threshold: str
    estimate: float | None
    pessimistic: float | None  # the bound that must meet the threshold to pass
    optimistic: float | None  # the bound that fails the criterion when it misses
    status: Status
    unit: Literal["count", "rate", "pct", "ms", "amount"] = "rate"
    note: str = ""

    @classmethod
    def unmeasured(
        cls,
        name: str,
        threshold: str,
        status: Status,
        note: str,
        unit: Literal["count", "rate", "pct", "ms", "amount"] = "rate",
    ) -> Criterion:
        """A criterion with no estimate yet (undecided) or none to make (skipped)."""
        return cls(name, threshold, None, None, None, status, unit=unit, note=note)


@dataclass(frozen=True)
class GateResult:
    experiment_id: str
    challenger: str
    samples: int
    confidence: float
    criteria: list[Criterion] = field(default_factory=list)

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


def overall_exit_code(results: list[GateResult]) -> int:
    """1 if any challenger fails, else 2 if any lacks data, else 0."""
    codes = {r.exit_code for r in results}
    if not results:
        return 2
    if 1 in codes:
        return 1
    return 2 if 2 in codes else 0


def _judge(pessimistic_ok: bool, optimistic_ok: bool) -> Status:
    if pessimistic_ok:
        return "pass"
    return "undecided" if optimistic_ok else "fail"


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


def agreement_criterion(c: Counts, spec: GateSpec) -> Criterion:
    threshold = f">= {spec.min_agreement:.2%}"
    if c.compared == 0:
        return Criterion.unmeasured(
            "agreement", threshold, "undecided", "no response pairs compared yet"
        )
    agree = c.compared - c.diverged
    bounds = wilson_z(agree, c.compared, one_sided_z(spec.confidence))
    status = _judge(bounds.low >= spec.min_agreement, bounds.high >= spec.min_agreement)
    return Criterion(
        "agreement",
        threshold,
        agree / c.compared,
        bounds.low,
        bounds.high,
        status,
        note=f"{agree:,}/{c.compared:,} agree",
    )


def error_increase_criterion(c: Counts, spec: GateSpec) -> Criterion:
    threshold = f"<= +{spec.max_error_rate_increase:.2%}"
    if c.paired == 0:
        return Criterion.unmeasured(
            "error-rate increase", threshold, "undecided", "no requests with a champion response"
        )
    ci = newcombe_paired_diff(
        c.paired_both_failed,
        c.paired_challenger_only_failed,
        c.paired_champion_only_failed,
        c.paired,
        two_sided_confidence_for_one_sided(spec.confidence),
    )
    estimate = (c.paired_challenger_only_failed - c.paired_champion_only_failed) / c.paired
    limit = spec.max_error_rate_increase
    champion_failed = c.paired_both_failed + c.paired_champion_only_failed
    challenger_failed = c.paired_both_failed + c.paired_challenger_only_failed
    return Criterion(
        "error-rate increase",
        threshold,
        estimate,
        ci.high,
        ci.low,
        _judge(ci.high <= limit, ci.low <= limit),
        note=f"challenger {challenger_failed:,} vs champion {champion_failed:,} failed "
        f"of {c.paired:,}",
    )


def invalid_format_criterion(c: Counts, spec: GateSpec) -> Criterion:
    threshold = f"<= {spec.max_invalid_format_rate:.2%}"
    n, k = c.challenger_format_checked, c.challenger_format_invalid
    if n == 0:
        return Criterion.unmeasured(
            "invalid format", threshold, "skipped", "no output format check configured"
        )
    bounds = wilson_z(k, n, one_sided_z(spec.confidence))
    limit = spec.max_invalid_format_rate
    return Criterion(
        "invalid format",
        threshold,
        k / n,
        bounds.high,
        bounds.low,
        _judge(bounds.high <= limit, bounds.low <= limit),
        note=f"{k:,}/{n:,} invalid",
    )


def floor_criterion(c: Counts, control: Counts | None, spec: GateSpec, name: str) -> Criterion:
    limit = spec.max_divergence_above_floor or 0.0
    threshold = f"<= +{limit:.2%} vs {name}"
    if control is None or control.compared == 0 or c.compared == 0:
        return Criterion.unmeasured(
            "divergence above floor",
            threshold,
            "undecided",
            f"no comparisons of the control {name!r} yet",
        )
    ci = newcombe_diff(
        c.diverged,
        c.compared,
        control.diverged,
        control.compared,
        two_sided_confidence_for_one_sided(spec.confidence),
    )
    estimate = c.diverged / c.compared - control.diverged / control.compared
    return Criterion(
        "divergence above floor",
        threshold,
        estimate,
        ci.high,
        ci.low,
        _judge(ci.high <= limit, ci.low <= limit),
        note=f"{name} diverges {control.diverged / control.compared:.2%}",
    )


def latency_criterion(
    scope: Scope, c: Counts, spec: GateSpec, control: Counts | None = None, control_name: str = ""
) -> Criterion:
    limit = spec.max_latency_p95_regression_pct
    threshold = f"<= +{limit:g}%"
    by_control = spec.latency_baseline == "control"
    baseline_name = "control" if by_control else "champion"
    if by_control:
        if control is None or control.challenger_ok == 0:
            return Criterion.unmeasured(
                "latency p95 regression",
                threshold,
                "undecided",
                f"no latency of the control {control_name!r} yet",
                unit="pct",
            )
        n_baseline, baseline = control.challenger_ok, control_name
    else:
        n_baseline, baseline = c.champion_ok, c.challenger
    n_challenger = c.challenger_ok
    if n_baseline == 0 or n_challenger == 0:
        return Criterion.unmeasured(
            "latency p95 regression",
            threshold,
            "undecided",
            "no successful responses on one side",
            unit="pct",
        )
    # each side's bound at 1 - alpha/2: the ratio's bound holds with >= 1 - alpha
    per_side = 1 - (1 - spec.confidence) / 2
    q = LATENCY_QUANTILE
    base_low, base_high = quantile_ci_levels(q, n_baseline, per_side)
    challenger_low, challenger_high = quantile_ci_levels(q, n_challenger, per_side)
    row = scope.run(
        "latency_bounds",
        base_point=q,
        base_low=base_low,
        base_high=base_high,
        challenger_point=q,
        challenger_low=challenger_low,
        challenger_high=challenger_high,
        challenger=c.challenger,
        baseline=baseline,
        baseline_is_control=int(by_control),
        experiment=c.experiment_id,
    ).dicts()[0]
    base = [float(v) for v in row["baseline_q"]]
    chall = [float(v) for v in row["challenger_q"]]
    if all(v == 0 for v in base):
        # e.g. an eval set whose references carry no latency: nothing to compare against
        return Criterion.unmeasured(
            "latency p95 regression",
            threshold,
            "skipped",
            f"the {baseline_name} has no measured latency (eval references?)",
            unit="pct",
        )
    if not all(v > 0 for v in base):  # NaN (empty sketch) or zero
        return Criterion.unmeasured(
            "latency p95 regression",
            threshold,
            "undecided",
            f"no {baseline_name} latency",
            unit="pct",
        )
    estimate = (chall[0] / base[0] - 1) * 100
    pessimistic = (chall[2] / base[1] - 1) * 100
    optimistic = (chall[1] / base[2] - 1) * 100
    return Criterion(
        "latency p95 regression",
        threshold,
        estimate,
        pessimistic,
        optimistic,
        _judge(pessimistic <= limit, optimistic <= limit),
        unit="pct",
        note=f"p95 {chall[0]:.1f} ms vs {baseline_name} {base[0]:.1f} ms",
    )


def slice_criterion(scope: Scope, c: Counts, spec: GateSpec) -> Criterion:
    """Agreement in every attribute slice (value) with >= min_slice_samples pairs.

    Bonferroni over the m slices tested: each slice's bounds at 1 - alpha/m, so
    "every slice passes" holds with the gate's confidence. Passes when every
    slice's lower bound meets the threshold, fails when some slice's upper bound
    misses it.
    """
    limit = spec.min_slice_agreement or 0.0
    threshold = f">= {limit:.2%} each"
    rows = scope.run(
        "slices",
        z=0.0,
        min_compared=spec.min_slice_samples,
        per_challenger=100_000,
        challengers=[c.challenger],
        experiment=c.experiment_id,
    ).dicts()
    if not rows:
        return Criterion.unmeasured(
            "slice agreement",
            threshold,
            "skipped",
            f"no slice with {spec.min_slice_samples} compared pairs yet",
        )
    z = one_sided_z(1 - (1 - spec.confidence) / len(rows))
    judged = []
    for r in rows:
        n = int(r["compared"])
        agree = n - int(r["diverged"])
        bounds = wilson_z(agree, n, z)
        judged.append((bounds.low, bounds.high, agree / n, f"{r['attribute']}={r['value']}", n))
    worst = min(judged)
    failing = [j for j in judged if j[1] < limit]
    status = _judge(worst[0] >= limit, not failing)
    shown = min(failing) if failing else worst
    return Criterion(
        "slice agreement",
        threshold,
        shown[2],
        worst[0],
        min(j[1] for j in judged),
        status,
        note=f"worst: {shown[3]} (n={shown[4]:,}) of {len(rows)} slices",
    )


def evaluate(
    scope: Scope,
    c: Counts,
    control: Counts | None,
    spec: GateSpec,
    control_name: str,
    resources: ResourceOptions | None = None,
) -> GateResult:
    criteria = [samples_criterion(c, spec)]
    if c.comparisons > 0:
        criteria += [
            agreement_criterion(c, spec),
            error_increase_criterion(c, spec),
            latency_criterion(scope, c, spec, control, control_name),
            invalid_format_criterion(c, spec),
        ]
        if spec.max_divergence_above_floor is not None:
            criteria.append(floor_criterion(c, control, spec, control_name))
        if spec.min_slice_agreement is not None:
            criteria.append(slice_criterion(scope, c, spec))
        from shadowstream.analytics.gate_resources import resource_criteria

        criteria += resource_criteria(scope, c, spec, resources)  # [gate.resources], off by default
    return GateResult(c.experiment_id, c.challenger, c.comparisons, spec.confidence, criteria)


def run_gate(
    scope: Scope,
    spec: GateSpec,
    control_name: str,
    challenger: str | None = None,
    configured: tuple[str, ...] = (),
    resources: ResourceOptions | None = None,
) -> list[GateResult]:
    """Gate one challenger, or every challenger but the control, per experiment.

    Configured challengers with no comparisons in range yet are gated too (and
    get "not enough data"); a name that is neither configured nor in the data
    is a mistake (GateError), not a wait.
    """
    from shadowstream.analytics.report import fetch_counts

    require_schema(scope.warehouse)
    scope = Scope(scope.warehouse, scope.window.snapped(), scope.experiment, scope.exact)
    counts = fetch_counts(scope)
    controls = {c.experiment_id: c for c in counts if c.challenger == control_name}
    seen = {c.challenger for c in counts}
    if challenger is not None and challenger not in seen | set(configured):
        known = ", ".join(sorted(seen | set(configured))) or "none"
        raise GateError(f"no challenger {challenger!r} in the data or the config (known: {known})")
    names = [challenger] if challenger else sorted((seen | set(configured)) - {control_name})
    experiments = sorted({c.experiment_id for c in counts}) or [scope.experiment or "live"]
    if scope.experiment:
        experiments = [scope.experiment]
    by_key = {(c.experiment_id, c.challenger): c for c in counts}
    results = []
    for name in names:
        keys = [(e, name) for e in experiments if (e, name) in by_key]
        if not keys:  # nothing yet: one "not enough data" result
            keys = [(experiments[0] if len(experiments) == 1 else "live", name)]
        for key in keys:
            c = by_key.get(key) or Counts(experiment_id=key[0], challenger=name)
            results.append(evaluate(scope, c, controls.get(key[0]), spec, control_name, resources))
    return results
