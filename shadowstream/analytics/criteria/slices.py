"""Agreement in every attribute slice (and endpoint) with enough compared pairs.

A bug confined to ``language=de`` hides in the overall agreement; here every
slice with at least ``min_slice_samples`` compared pairs must agree at least
``min_slice_agreement`` - beyond the control's disagreement *in the same
slice* when the challenger has a control (``agreement_baseline = "auto"``).
Each slice is judged at alpha / m (Bonferroni over the m slices tested, the
correction the report uses): a slice that is confidently worse FAILS the gate
even while the overall agreement is still undecided.
"""

from __future__ import annotations

from dataclasses import dataclass

from shadowstream.analytics.criteria.base import Criterion, GateContext, decide
from shadowstream.core.decision_config import GateSpec


@dataclass(frozen=True)
class _Judged:
    label: str
    n: int
    estimate: float
    pessimistic: float
    optimistic: float
    regressed: bool


class SliceCriterion:
    name = "slice agreement"

    def enabled(self, spec: GateSpec) -> bool:
        return spec.min_slice_agreement is not None

    def _rows(self, context: GateContext) -> tuple[dict[str, tuple[int, int]], ...]:
        c = context.counts
        relative = context.spec.agreement_baseline == "auto" and context.has_control
        names = [c.challenger, context.control_name] if relative else [c.challenger]
        rows = context.scope.run(
            "slices",
            z=0.0,
            min_compared=1,
            per_challenger=1_000_000,
            challengers=names,
            experiment=c.experiment_id,
        ).dicts()
        mine: dict[str, tuple[int, int]] = {}
        control: dict[str, tuple[int, int]] = {}
        for r in rows:
            target = mine if str(r["challenger"]) == c.challenger else control
            target[f"{r['attribute']}={r['value']}"] = (int(r["compared"]), int(r["diverged"]))
        return mine, control

    def judge(self, context: GateContext) -> Criterion:
        spec = context.spec
        limit = spec.min_slice_agreement or 0.0
        relative = spec.agreement_baseline == "auto" and context.has_control
        threshold = f">= {limit:.2%} each" + (" beyond the floor" if relative else "")
        mine, control = self._rows(context)
        tested = {k: v for k, v in mine.items() if v[0] >= spec.min_slice_samples}
        if not tested:
            return Criterion.unmeasured(
                self.name,
                threshold,
                "skipped",
                f"no slice with {spec.min_slice_samples} compared pairs yet",
            )
        alpha = context.alpha / max(len(tested), context.slice_family)
        judged = [
            self._judge_slice(context, label, n, k, control.get(label), alpha)
            for label, (n, k) in sorted(tested.items())
        ]
        worst = min(judged, key=lambda j: (j.pessimistic, j.estimate))
        failing = [j for j in judged if j.optimistic < limit]
        shown = min(failing, key=lambda j: j.optimistic) if failing else worst
        return Criterion(
            self.name,
            threshold,
            shown.estimate,
            worst.pessimistic,
            min(j.optimistic for j in judged),
            decide(worst.pessimistic >= limit, not failing),
            note=f"worst: {shown.label} (n={shown.n:,}) of {len(judged)} slices",
            regressed=any(j.regressed for j in judged),
        )

    def _judge_slice(
        self,
        context: GateContext,
        label: str,
        n: int,
        k: int,
        control: tuple[int, int] | None,
        alpha: float,
    ) -> _Judged:
        bounds, c = context.bounds, context.counts
        if control is not None and control[0] > 0:
            excess = bounds.difference(k, n, control[1], control[0], alpha)
            floor = control[1] / control[0]
            regressed = excess.low > 0
        else:  # absolute; "regressed" means worse than the rest of its own traffic
            excess = bounds.rate(k, n, alpha)
            floor = 0.0
            rest_n, rest_k = c.compared - n, c.diverged - k
            regressed = rest_n > 0 and bounds.difference(k, n, rest_k, rest_n, alpha).low > 0
        return _Judged(
            label,
            n,
            min(1.0, 1 - (k / n - floor)),
            min(1.0, 1 - excess.high),
            min(1.0, 1 - excess.low),
            regressed,
        )
