"""Gate logic on hand-made counts (no ClickHouse): bounds, not point estimates."""

from __future__ import annotations

from typing import Any

from shadowstream.analytics.gate import (
    GateResult,
    agreement_criterion,
    error_increase_criterion,
    evaluate,
    invalid_format_criterion,
    latency_criterion,
    overall_exit_code,
)
from shadowstream.analytics.model import Counts
from shadowstream.core.config import GateSpec
from shadowstream.warehouse.client import QueryResult


class FakeScope:
    """Answers latency_bounds with p95 = (point, low, high) per side."""

    def __init__(self, champion: tuple[float, float, float], challenger: tuple[float, ...]):
        self.champion, self.challenger = champion, challenger
        self.calls: list[dict[str, Any]] = []

    def run(self, name: str, **params: Any) -> QueryResult:
        assert name == "latency_bounds"
        self.calls.append(params)
        return QueryResult(("baseline_q", "challenger_q"), [(self.champion, self.challenger)])


def counts(**overrides: Any) -> Counts:
    n = overrides.pop("n", 1000)
    values: dict[str, Any] = {
        "experiment_id": "live",
        "challenger": "c",
        "comparisons": n,
        "compared": n,
        "diverged": int(n * 0.03),
        "champion_ok": n,
        "challenger_ok": n,
        "paired": n,
        "challenger_format_checked": n,
    }
    values.update(overrides)
    return Counts(**values)


FAST = FakeScope((100.0, 96.0, 104.0), (101.0, 97.0, 105.0))


def test_a_good_challenger_with_enough_data_is_promoted() -> None:
    result = evaluate(FAST, counts(), None, GateSpec(), "control")  # type: ignore[arg-type]
    assert [c.status for c in result.criteria] == ["pass"] * 5
    assert result.verdict == "promote" and result.exit_code == 0


def test_agreement_uses_the_lower_bound() -> None:
    spec = GateSpec(min_agreement=0.90)
    # 91% agreement on 300 pairs: the point estimate passes, the lower bound (~88%) does not
    borderline = agreement_criterion(counts(n=300, diverged=27), spec)
    assert borderline.estimate is not None and borderline.estimate > 0.90
    assert borderline.pessimistic is not None and borderline.pessimistic < 0.90
    assert borderline.status == "undecided"
    assert agreement_criterion(counts(n=20_000, diverged=1800), spec).status == "pass"
    assert agreement_criterion(counts(n=20_000, diverged=2200), spec).status == "fail"


def test_error_increase_is_paired_and_bounded() -> None:
    spec = GateSpec(max_error_rate_increase=0.01)
    same = counts(paired_both_failed=20, n=2000)  # both fail on the same 20 requests
    assert error_increase_criterion(same, spec).status == "pass"
    worse = counts(paired_challenger_only_failed=80, n=2000)  # +4pp
    criterion = error_increase_criterion(worse, spec)
    assert criterion.status == "fail" and criterion.optimistic is not None
    assert criterion.optimistic > 0.01
    slightly = counts(paired_challenger_only_failed=14, n=1000)  # +1.4pp, wide interval
    assert error_increase_criterion(slightly, spec).status == "undecided"


def test_invalid_format_is_skipped_without_a_format_check() -> None:
    spec = GateSpec()
    assert invalid_format_criterion(counts(challenger_format_checked=0), spec).status == "skipped"
    assert invalid_format_criterion(counts(challenger_format_invalid=50), spec).status == "fail"


def test_latency_regression_uses_order_statistic_bounds() -> None:
    spec = GateSpec(max_latency_p95_regression_pct=10)
    c = counts()
    ok = latency_criterion(FAST, c, spec)  # type: ignore[arg-type]
    # pessimistic: challenger's upper bound over champion's lower bound
    assert ok.pessimistic == (105.0 / 96.0 - 1) * 100
    assert ok.optimistic == (97.0 / 104.0 - 1) * 100
    assert ok.status == "pass"
    call = FAST.calls[-1]
    assert call["base_low"] < 0.95 < call["base_high"]
    slow = FakeScope((100.0, 96.0, 104.0), (160.0, 150.0, 170.0))
    assert latency_criterion(slow, c, spec).status == "fail"  # type: ignore[arg-type]
    unsure = FakeScope((100.0, 96.0, 104.0), (108.0, 100.0, 116.0))
    assert latency_criterion(unsure, c, spec).status == "undecided"  # type: ignore[arg-type]


def test_too_few_samples_means_wait_even_when_something_fails() -> None:
    few = counts(n=50, paired_challenger_only_failed=25)
    result = evaluate(FAST, few, None, GateSpec(min_samples=200), "control")  # type: ignore[arg-type]
    assert "fail" in [c.status for c in result.criteria]
    assert result.verdict == "not enough data" and result.exit_code == 2
    empty = evaluate(FAST, counts(n=0), None, GateSpec(), "control")  # type: ignore[arg-type]
    assert [c.name for c in empty.criteria] == ["samples"] and empty.exit_code == 2


def test_floor_criterion_only_when_configured() -> None:
    spec = GateSpec(max_divergence_above_floor=0.02)
    control = counts(challenger="control", diverged=10)
    result = evaluate(FAST, counts(diverged=15), control, spec, "control")  # type: ignore[arg-type]
    assert {c.name: c.status for c in result.criteria}["divergence above floor"] == "pass"
    no_control = evaluate(FAST, counts(), None, spec, "control")  # type: ignore[arg-type]
    assert no_control.verdict == "not enough data"
    assert "divergence above floor" not in [
        c.name
        for c in evaluate(FAST, counts(), None, GateSpec(), "control").criteria  # type: ignore[arg-type]
    ]


def test_overall_exit_code() -> None:
    def result(code: int) -> GateResult:
        spec = GateSpec()
        c = {0: counts(), 1: counts(paired_challenger_only_failed=300), 2: counts(n=10)}[code]
        r = evaluate(FAST, c, None, spec, "control")  # type: ignore[arg-type]
        assert r.exit_code == code
        return r

    assert overall_exit_code([result(0), result(0)]) == 0
    assert overall_exit_code([result(0), result(2)]) == 2
    assert overall_exit_code([result(2), result(1), result(0)]) == 1
    assert overall_exit_code([]) == 2
