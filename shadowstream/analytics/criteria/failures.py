"""Failures: the error-rate increase over the champion, and invalid output format."""

from __future__ import annotations

from shadowstream.analytics.criteria.base import Criterion, GateContext, decide
from shadowstream.core.decision_config import GateSpec


class ErrorIncreaseCriterion:
    """Challenger failure rate minus the champion's, on the same requests (paired).

    A failure is error/timeout for the champion; for the challenger also
    ``missing`` (a challenger that never answers within the window is failing).
    """

    name = "error-rate increase"

    def enabled(self, spec: GateSpec) -> bool:
        return True

    def judge(self, context: GateContext) -> Criterion:
        c = context.counts
        limit = context.spec.max_error_rate_increase
        threshold = f"<= +{limit:.2%}"
        if c.paired == 0:
            return Criterion.unmeasured(
                self.name, threshold, "undecided", "no requests with a champion response"
            )
        ci = context.bounds.paired_difference(
            c.paired_both_failed,
            c.paired_challenger_only_failed,
            c.paired_champion_only_failed,
            c.paired,
            context.alpha,
        )
        estimate = (c.paired_challenger_only_failed - c.paired_champion_only_failed) / c.paired
        champion_failed = c.paired_both_failed + c.paired_champion_only_failed
        challenger_failed = c.paired_both_failed + c.paired_challenger_only_failed
        return Criterion(
            self.name,
            threshold,
            estimate,
            ci.high,
            ci.low,
            decide(ci.high <= limit, ci.low <= limit),
            note=f"challenger {challenger_failed:,} vs champion {champion_failed:,} failed "
            f"of {c.paired:,}",
            regressed=ci.low > 0,
        )


class InvalidFormatCriterion:
    """Share of the challenger's checked outputs that break the declared format."""

    name = "invalid format"

    def enabled(self, spec: GateSpec) -> bool:
        return True

    def judge(self, context: GateContext) -> Criterion:
        c = context.counts
        limit = context.spec.max_invalid_format_rate
        threshold = f"<= {limit:.2%}"
        n, k = c.challenger_format_checked, c.challenger_format_invalid
        if n == 0:
            return Criterion.unmeasured(
                self.name, threshold, "skipped", "no output format check configured"
            )
        bounds = context.bounds.rate(k, n, context.alpha)
        regressed = False
        if c.champion_format_checked > 0:  # worse than the champion's own outputs?
            above = context.bounds.difference(
                k, n, c.champion_format_invalid, c.champion_format_checked, context.alpha
            )
            regressed = above.low > 0
        return Criterion(
            self.name,
            threshold,
            k / n,
            bounds.high,
            bounds.low,
            decide(bounds.high <= limit, bounds.low <= limit),
            note=f"{k:,}/{n:,} invalid",
            regressed=regressed,
        )
