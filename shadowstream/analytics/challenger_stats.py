"""A challenger's row of the report: both sides' rates and latencies, the deltas, the
failure increase on paired requests, and the divergence above its control's (A/A)."""

from __future__ import annotations

from shadowstream.analytics.model import (
    ChallengerReport,
    Counts,
    LatencyDelta,
    NoiseFloor,
    Rate,
    Side,
    ratio,
)
from shadowstream.analytics.report_options import ReportOptions
from shadowstream.analytics.stats import newcombe_diff, newcombe_paired_diff, two_proportion_test


def _side(c: Counts, prefix: str, confidence: float) -> Side:
    n = c.comparisons
    q = getattr(c, f"{prefix}_latency_q")
    return Side(
        ok=getattr(c, f"{prefix}_ok"),
        errors=Rate.of(getattr(c, f"{prefix}_errors"), n, confidence),
        timeouts=Rate.of(getattr(c, f"{prefix}_timeouts"), n, confidence),
        missing=Rate.of(getattr(c, f"{prefix}_missing"), n, confidence),
        invalid_format=Rate.of(
            getattr(c, f"{prefix}_format_invalid"),
            getattr(c, f"{prefix}_format_checked"),
            confidence,
        ),
        latency_p50_ms=q[0] if len(q) > 0 else None,
        latency_p95_ms=q[1] if len(q) > 1 else None,
        latency_p99_ms=q[2] if len(q) > 2 else None,
        tokens_in=ratio(getattr(c, f"{prefix}_tokens_in_sum"), getattr(c, f"{prefix}_tokens_in_n")),
        tokens_out=ratio(
            getattr(c, f"{prefix}_tokens_out_sum"), getattr(c, f"{prefix}_tokens_out_n")
        ),
        tool_calls=ratio(
            getattr(c, f"{prefix}_tool_calls_sum"), getattr(c, f"{prefix}_tool_calls_n")
        ),
        cost=ratio(getattr(c, f"{prefix}_cost_sum"), getattr(c, f"{prefix}_cost_n")),
    )


def _delta(champion: float | None, challenger: float | None) -> tuple[float | None, float | None]:
    if champion is None or challenger is None:
        return None, None
    pct = (challenger / champion - 1) * 100 if champion > 0 else None
    return challenger - champion, pct


def noise_floor(
    c: Counts, control: Counts | None, name: str, confidence: float
) -> NoiseFloor | None:
    """How the challenger's divergence compares with the control's (A/A) divergence.

    Newcombe's interval for the difference of two independent proportions. The
    control and the challenger see mostly the same requests; where requests that
    make the champion disagree with itself also make the challenger disagree, the
    two rates are positively correlated and treating them as independent makes
    the interval wider (conservative), never narrower.
    """
    if control is None or c.challenger == name or control.compared == 0:
        return None
    control_rate = Rate.of(control.diverged, control.compared, confidence)
    if c.compared == 0:
        return NoiseFloor(name, control_rate, None, None, None, None, False)
    ci = newcombe_diff(c.diverged, c.compared, control.diverged, control.compared, confidence)
    p_value = two_proportion_test(c.diverged, c.compared, control.diverged, control.compared)
    diff = c.diverged / c.compared - control.diverged / control.compared
    return NoiseFloor(name, control_rate, diff, ci.low, ci.high, p_value, ci.low > 0 or ci.high < 0)


def challenger_report(
    c: Counts, control: Counts | None, options: ReportOptions, control_name: str | None = None
) -> ChallengerReport:
    """One challenger's row; ``control`` is its paired control's counts (named
    ``control_name``, default ``options.control``)."""
    name = options.control if control_name is None else control_name
    confidence = options.confidence
    champion = _side(c, "champion", confidence)
    challenger = _side(c, "challenger", confidence)
    d50, p50 = _delta(champion.latency_p50_ms, challenger.latency_p50_ms)
    d95, p95 = _delta(champion.latency_p95_ms, challenger.latency_p95_ms)
    d99, p99 = _delta(champion.latency_p99_ms, challenger.latency_p99_ms)
    control_p95 = None
    if control is not None and len(control.challenger_latency_q) > 1:
        control_p95 = control.challenger_latency_q[1]
    increase, increase_ci = None, None
    if c.paired > 0:
        increase = (c.paired_challenger_only_failed - c.paired_champion_only_failed) / c.paired
        increase_ci = newcombe_paired_diff(
            c.paired_both_failed,
            c.paired_challenger_only_failed,
            c.paired_champion_only_failed,
            c.paired,
            confidence,
        )
    return ChallengerReport(
        experiment_id=c.experiment_id,
        challenger=c.challenger,
        is_control=c.challenger in options.control_names,
        comparisons=c.comparisons,
        late=c.late,
        both_answered=c.both_answered,
        divergence=Rate.of(c.diverged, c.compared, confidence),
        mean_divergence_score=ratio(c.divergence_score_sum, c.compared),
        floor=noise_floor(c, control, name, confidence) if name else None,
        champion=champion,
        challenger_side=challenger,
        latency_delta=LatencyDelta(d50, d95, d99, p50, p95, p99),
        failure_increase=increase,
        failure_increase_ci=increase_ci,
        first_minute=c.first_minute,
        last_minute=c.last_minute,
        control=name if control is not None else "",
        control_p95_ms=control_p95,
        p95_vs_control_pct=_delta(control_p95, challenger.latency_p95_ms)[1],
    )
