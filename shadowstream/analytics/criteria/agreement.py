"""Agreement with the champion, as is or beyond the A/A noise floor; divergence above the floor.

With ``agreement_baseline = "auto"`` (default) and a control in the same
experiment, agreement is judged *beyond the control's own disagreement*:
1 - (challenger divergence - control divergence). A champion that disagrees
with itself on 12% of requests (sampling temperature, a free-text field) then
does not fail every challenger, its own re-run included. Without a control it
is plain agreement over compared pairs.
"""

from __future__ import annotations

from shadowstream.analytics.criteria.base import Criterion, GateContext, decide
from shadowstream.core.decision_config import GateSpec


def beyond_control(context: GateContext) -> bool:
    """Whether agreement is judged against the control's disagreement."""
    control = context.control
    return (
        context.spec.agreement_baseline == "auto"
        and context.has_control
        and control is not None
        and control.compared > 0
    )


class AgreementCriterion:
    name = "agreement"

    def enabled(self, spec: GateSpec) -> bool:
        return True

    def judge(self, context: GateContext) -> Criterion:
        c, spec = context.counts, context.spec
        limit = spec.min_agreement
        relative = beyond_control(context)
        threshold = f">= {limit:.2%}" + (" beyond the floor" if relative else "")
        if c.compared == 0:
            return Criterion.unmeasured(
                self.name, threshold, "undecided", "no response pairs compared yet"
            )
        agree = c.compared - c.diverged
        if not relative:
            bounds = context.bounds.rate(agree, c.compared, context.alpha)
            return Criterion(
                self.name,
                threshold,
                agree / c.compared,
                bounds.low,
                bounds.high,
                decide(bounds.low >= limit, bounds.high >= limit),
                note=f"{agree:,}/{c.compared:,} agree",
            )
        control = context.control
        assert control is not None
        excess = context.bounds.difference(
            c.diverged, c.compared, control.diverged, control.compared, context.alpha
        )
        floor = control.diverged / control.compared
        estimate = 1 - (c.diverged / c.compared - floor)
        pessimistic, optimistic = 1 - excess.high, 1 - excess.low
        return Criterion(
            self.name,
            threshold,
            min(1.0, estimate),
            min(1.0, pessimistic),
            min(1.0, optimistic),
            decide(pessimistic >= limit, optimistic >= limit),
            note=f"{agree:,}/{c.compared:,} agree; {context.control_name} (A/A) "
            f"disagrees {floor:.2%}",
            regressed=excess.low > 0,
        )


class FloorCriterion:
    """Optional: divergence at most ``max_divergence_above_floor`` above the control's."""

    name = "divergence above floor"

    def enabled(self, spec: GateSpec) -> bool:
        return spec.max_divergence_above_floor is not None

    def judge(self, context: GateContext) -> Criterion:
        c, control = context.counts, context.control
        limit = context.spec.max_divergence_above_floor or 0.0
        name = context.control_name or "a control"
        threshold = f"<= +{limit:.2%} vs {name}"
        if control is None or not context.has_control or control.compared == 0 or c.compared == 0:
            return Criterion.unmeasured(
                self.name, threshold, "undecided", f"no comparisons of {name} yet"
            )
        ci = context.bounds.difference(
            c.diverged, c.compared, control.diverged, control.compared, context.alpha
        )
        estimate = c.diverged / c.compared - control.diverged / control.compared
        return Criterion(
            self.name,
            threshold,
            estimate,
            ci.high,
            ci.low,
            decide(ci.high <= limit, ci.low <= limit),
            note=f"{name} diverges {control.diverged / control.compared:.2%}",
            regressed=ci.low > 0,
        )
