"""Latency p95 regression against the control (same shadow path) or the champion.

Distribution-free bounds of each p95 from order statistics (fixed-sample:
the binomial method; anytime: a confidence sequence of the ranks), each side
at alpha/2 so the ratio's bound holds with >= 1 - alpha (Bonferroni):
pessimistic = challenger's upper bound / baseline's lower bound - 1.
"""

from __future__ import annotations

import math

from shadowstream.analytics.criteria.base import Criterion, GateContext, Status
from shadowstream.core.decision_config import GateSpec

LATENCY_QUANTILE = 0.95
NAME = "latency p95 regression"


def latency_baseline(context: GateContext) -> str:
    """``control`` or ``champion``: what this challenger's latency is judged against."""
    wanted = context.spec.latency_baseline
    if wanted != "auto":
        return wanted
    control = context.control
    measured = context.has_control and control is not None and control.challenger_ok > 0
    return "control" if measured else "champion"


class LatencyCriterion:
    name = NAME

    def enabled(self, spec: GateSpec) -> bool:
        return True

    def judge(self, context: GateContext) -> Criterion:
        c = context.counts
        limit = context.spec.max_latency_p95_regression_pct
        threshold = f"<= +{limit:g}%"
        by_control = latency_baseline(context) == "control"
        baseline_label = context.control_name if by_control else "champion"
        if by_control:
            control = context.control
            if control is None or not context.has_control or control.challenger_ok == 0:
                name = context.control_name or "a control"
                return self._unmeasured(threshold, "undecided", f"no latency of {name} yet")
            n_baseline, baseline = control.challenger_ok, context.control_name
        else:
            n_baseline, baseline = c.champion_ok, c.challenger
        if n_baseline == 0 or c.challenger_ok == 0:
            return self._unmeasured(threshold, "undecided", "no successful responses on one side")
        side_alpha = context.alpha / 2
        q = LATENCY_QUANTILE
        base_low, base_high = context.bounds.quantile_levels(q, n_baseline, side_alpha)
        chall_low, chall_high = context.bounds.quantile_levels(q, c.challenger_ok, side_alpha)
        row = context.scope.run(
            "latency_bounds",
            base_point=q,
            base_low=base_low,
            base_high=min(base_high, 1.0),
            challenger_point=q,
            challenger_low=chall_low,
            challenger_high=min(chall_high, 1.0),
            challenger=c.challenger,
            baseline=baseline,
            baseline_is_control=int(by_control),
            experiment=c.experiment_id,
        ).dicts()[0]
        base = [float(v) for v in row["baseline_q"]]
        chall = [float(v) for v in row["challenger_q"]]
        if all(v == 0 for v in base):
            # e.g. an eval set whose references carry no latency: nothing to compare against
            return self._unmeasured(
                threshold,
                "skipped",
                f"the {baseline_label} has no measured latency (eval references?)",
            )
        if not all(v > 0 for v in base):  # NaN (empty sketch) or zero
            return self._unmeasured(threshold, "undecided", f"no {baseline_label} latency")
        estimate = (chall[0] / base[0] - 1) * 100
        # an infinite level: too few samples for that bound yet (anytime-valid)
        pessimistic = None if math.isinf(chall_high) else (chall[2] / base[1] - 1) * 100
        optimistic = None if math.isinf(base_high) else (chall[1] / base[2] - 1) * 100
        status: Status = (
            "pass"
            if pessimistic is not None and pessimistic <= limit
            else ("fail" if optimistic is not None and optimistic > limit else "undecided")
        )
        return Criterion(
            self.name,
            threshold,
            estimate,
            pessimistic,
            optimistic,
            status,
            unit="pct",
            note=f"p95 {chall[0]:.1f} ms vs {baseline_label} {base[0]:.1f} ms",
            regressed=optimistic is not None and optimistic > 0,
        )

    def _unmeasured(self, threshold: str, status: Status, note: str) -> Criterion:
        return Criterion.unmeasured(self.name, threshold, status, note, unit="pct")
