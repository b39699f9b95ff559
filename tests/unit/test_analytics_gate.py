"""Gate logic on hand-made counts (no ClickHouse): bounds, not point estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shadowstream.analytics.bounds import ANYTIME_VALID, FIXED_SAMPLE
from shadowstream.analytics.criteria import (
    DEFAULT_CRITERIA,
    AgreementCriterion,
    Criterion,
    ErrorIncreaseCriterion,
    GateContext,
    InvalidFormatCriterion,
    LatencyCriterion,
    SliceCriterion,
)
from shadowstream.analytics.gate import (
    GatePolicy,
    GateResult,
    evaluate,
    overall_exit_code,
    watch_policy,
)
from shadowstream.analytics.model import Counts
from shadowstream.analytics.pairing import overlap, pair_controls
from shadowstream.core.config import GateSpec
from shadowstream.warehouse.client import QueryResult

SLICE_COLUMNS = ("experiment_id", "challenger", "attribute", "value", "compared", "diverged")


@dataclass
class FakeScope:
    """Answers latency_bounds with p95 = (point, low, high) per side, and slices from rows."""

    champion: tuple[float, float, float]
    challenger: tuple[float, ...]
    slices: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def run(self, name: str, **params: Any) -> QueryResult:
        self.calls.append({"query": name, **params})
        if name == "slices":
            wanted = set(params["challengers"])
            rows = [("live", *row) for row in self.slices if row[0] in wanted]
            return QueryResult(SLICE_COLUMNS, rows)
        assert name == "latency_bounds"
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


def context(c: Counts, spec: GateSpec | None = None, **extra: Any) -> GateContext:
    spec = spec or GateSpec()
    return GateContext(
        extra.pop("scope", FAST), c, spec, FIXED_SAMPLE, 1 - spec.confidence, **extra
    )


def statuses(result: GateResult) -> dict[str, str]:
    return {c.name: c.status for c in result.criteria}


def test_a_good_challenger_with_enough_data_is_promoted() -> None:
    scope = FakeScope((100.0, 96.0, 104.0), (101.0, 97.0, 105.0), [("c", "lang", "en", 900, 27)])
    result = evaluate(scope, counts(), None, GateSpec(), "control")  # type: ignore[arg-type]
    assert statuses(result) == {
        "samples": "pass",
        "agreement": "pass",
        "error-rate increase": "pass",
        "latency p95 regression": "pass",
        "invalid format": "pass",
        "slice agreement": "pass",
    }
    assert result.verdict == "promote" and result.exit_code == 0
    assert result.method == "fixed-sample" and result.control == ""


def test_defaults_have_the_slice_rule_and_the_control_baselines_on() -> None:
    spec = GateSpec()
    assert spec.min_slice_agreement == 0.90 and spec.min_slice_samples == 100
    assert spec.latency_baseline == "auto" and spec.agreement_baseline == "auto"
    assert [k.name for k in DEFAULT_CRITERIA if k.enabled(spec)] == [
        "agreement",
        "error-rate increase",
        "latency p95 regression",
        "invalid format",
        "slice agreement",
    ]


def test_agreement_uses_the_lower_bound() -> None:
    spec = GateSpec(min_agreement=0.90)
    judge = AgreementCriterion().judge
    # 91% agreement on 300 pairs: the point estimate passes, the lower bound (~88%) does not
    borderline = judge(context(counts(n=300, diverged=27), spec))
    assert borderline.estimate is not None and borderline.estimate > 0.90
    assert borderline.pessimistic is not None and borderline.pessimistic < 0.90
    assert borderline.status == "undecided"
    assert judge(context(counts(n=20_000, diverged=1800), spec)).status == "pass"
    assert judge(context(counts(n=20_000, diverged=2200), spec)).status == "fail"


def test_agreement_is_judged_beyond_the_controls_own_disagreement() -> None:
    """A champion that disagrees with itself 12% of the time: its A/A twin at 12%
    fails an absolute 90% bar but agrees fully beyond the floor."""
    twin = counts(n=20_000, diverged=2400)
    control = counts(challenger="ctl", n=20_000, diverged=2400)
    judge = AgreementCriterion().judge
    relative = judge(context(twin, control=control, control_name="ctl"))
    assert relative.status == "pass" and relative.estimate == 1.0
    assert "beyond the floor" in relative.threshold and not relative.regressed
    absolute = judge(context(twin, GateSpec(agreement_baseline="absolute"), control=control))
    assert absolute.status == "fail"
    worse = judge(context(counts(n=20_000, diverged=5000), control=control, control_name="ctl"))
    assert worse.status == "fail" and worse.regressed  # 25% vs 12%: 13 points above


def test_error_increase_is_paired_and_bounded() -> None:
    spec = GateSpec(max_error_rate_increase=0.01)
    judge = ErrorIncreaseCriterion().judge
    same = counts(paired_both_failed=20, n=2000)  # both fail on the same 20 requests
    assert judge(context(same, spec)).status == "pass"
    worse = counts(paired_challenger_only_failed=80, n=2000)  # +4pp
    criterion = judge(context(worse, spec))
    assert criterion.status == "fail" and criterion.optimistic is not None
    assert criterion.optimistic > 0.01 and criterion.regressed
    slightly = counts(paired_challenger_only_failed=14, n=1000)  # +1.4pp, wide interval
    assert judge(context(slightly, spec)).status == "undecided"


def test_invalid_format_is_skipped_without_a_format_check() -> None:
    judge = InvalidFormatCriterion().judge
    assert judge(context(counts(challenger_format_checked=0))).status == "skipped"
    assert judge(context(counts(challenger_format_invalid=50))).status == "fail"


def test_latency_regression_uses_order_statistic_bounds() -> None:
    spec = GateSpec(max_latency_p95_regression_pct=10)
    c = counts()
    judge = LatencyCriterion().judge
    ok = judge(context(c, spec))
    # pessimistic: challenger's upper bound over champion's lower bound
    assert ok.pessimistic == (105.0 / 96.0 - 1) * 100
    assert ok.optimistic == (97.0 / 104.0 - 1) * 100
    assert ok.status == "pass" and "vs champion" in ok.note
    call = FAST.calls[-1]
    assert call["base_low"] < 0.95 < call["base_high"] and call["baseline_is_control"] == 0
    slow = FakeScope((100.0, 96.0, 104.0), (160.0, 150.0, 170.0))
    failed = judge(context(c, spec, scope=slow))
    assert failed.status == "fail" and failed.regressed
    unsure = FakeScope((100.0, 96.0, 104.0), (108.0, 100.0, 116.0))
    assert judge(context(c, spec, scope=unsure)).status == "undecided"


def test_latency_baseline_is_the_control_when_it_has_latency() -> None:
    scope = FakeScope((100.0, 96.0, 104.0), (101.0, 97.0, 105.0))
    control = counts(challenger="ctl")
    judged = LatencyCriterion().judge(
        context(counts(), scope=scope, control=control, control_name="ctl")
    )
    assert scope.calls[-1]["baseline"] == "ctl" and scope.calls[-1]["baseline_is_control"] == 1
    assert "vs ctl" in judged.note
    silent = counts(challenger="ctl", challenger_ok=0)  # a control with no latency yet
    LatencyCriterion().judge(context(counts(), scope=scope, control=silent, control_name="ctl"))
    assert scope.calls[-1]["baseline_is_control"] == 0
    forced = GateSpec(latency_baseline="control")
    waiting = LatencyCriterion().judge(context(counts(), forced, scope=scope))
    assert waiting.status == "undecided"


def test_a_bad_slice_fails_the_gate_while_the_overall_agreement_is_undecided() -> None:
    """90.1% overall agreement against a 90% bar is undecided; one slice at 60% is not."""
    scope = FakeScope(
        (100.0, 96.0, 104.0),
        (101.0, 97.0, 105.0),
        [
            ("c", "language", "de", 500, 200),  # wrong on 40% of German requests
            ("c", "language", "en", 4500, 295),
            ("ctl", "language", "de", 500, 5),
            ("ctl", "language", "en", 4500, 40),
        ],
    )
    c = counts(n=5000, diverged=495)
    control = counts(challenger="ctl", n=5000, diverged=45)
    spec = GateSpec(agreement_baseline="absolute")
    result = evaluate(scope, c, control, spec, "ctl")  # type: ignore[arg-type]
    found = {k.name: k for k in result.criteria}
    assert found["agreement"].status == "undecided"
    assert found["slice agreement"].status == "fail"
    assert "language=de" in found["slice agreement"].note
    assert result.verdict == "fail" and result.exit_code == 1


def test_slices_are_judged_beyond_the_controls_disagreement_in_the_same_slice() -> None:
    scope = FakeScope(
        (100.0, 96.0, 104.0),
        (101.0, 97.0, 105.0),
        [("c", "tier", "free", 3000, 600), ("ctl", "tier", "free", 3000, 590)],
    )
    c, control = counts(n=3000, diverged=600), counts(challenger="ctl", n=3000, diverged=590)
    judged = SliceCriterion().judge(context(c, scope=scope, control=control, control_name="ctl"))
    assert judged.status == "pass" and not judged.regressed  # 20% vs the control's 19.7%
    alone = SliceCriterion().judge(context(c, scope=scope))
    assert alone.status == "fail"  # 80% agreement in absolute terms


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
    assert statuses(result)["divergence above floor"] == "pass"
    assert result.control == "control"
    no_control = evaluate(FAST, counts(), None, spec, "control")  # type: ignore[arg-type]
    assert no_control.verdict == "not enough data"
    assert "divergence above floor" not in statuses(
        evaluate(FAST, counts(), None, GateSpec(), "control")  # type: ignore[arg-type]
    )


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


def test_the_watch_policy_uses_wider_anytime_valid_bounds() -> None:
    spec = GateSpec()
    policy = watch_policy(spec, confidence=0.95, max_slices=100)
    assert policy.bounds is ANYTIME_VALID and policy.alpha == pytest.approx(0.05 / 5)
    c = counts(n=2000, diverged=150)
    fixed = AgreementCriterion().judge(context(c))
    anytime = AgreementCriterion().judge(
        GateContext(FAST, c, spec, ANYTIME_VALID, policy.alpha or 0.0)
    )
    assert fixed.pessimistic is not None and anytime.pessimistic is not None
    assert fixed.optimistic is not None and anytime.optimistic is not None
    assert anytime.pessimistic < fixed.pessimistic and anytime.optimistic > fixed.optimistic
    result = evaluate(FAST, c, None, spec, "control", policy)  # type: ignore[arg-type]
    assert result.method == "anytime-valid"


class AlwaysFails:
    """A criterion from elsewhere (say, cost): plugs in without touching the gate."""

    name = "projected cost"

    def enabled(self, spec: GateSpec) -> bool:
        return True

    def judge(self, context: GateContext) -> Criterion:
        return Criterion(self.name, "<= $1", 2.0, 2.0, 2.0, "fail", note="too dear")


def test_criteria_are_pluggable_units() -> None:
    policy = GatePolicy(criteria=(*DEFAULT_CRITERIA, AlwaysFails()))
    scope = FakeScope((100.0, 96.0, 104.0), (101.0, 97.0, 105.0))
    result = evaluate(scope, counts(), None, GateSpec(), "control", policy)  # type: ignore[arg-type]
    assert result.verdict == "fail" and [c.name for c in result.failed] == ["projected cost"]


def test_each_challenger_is_paired_with_its_own_endpoint_groups_control() -> None:
    mix = {
        ("live", "ctl-a"): {"/a": 500},
        ("live", "ctl-b"): {"/b": 480, "/a": 20},
        ("live", "twin-b"): {"/b": 300},
        ("live", "new-a"): {"/a": 100},
        ("live", "nowhere"): {},
    }
    keys = [*mix, ("batch-1", "twin-b")]
    pairs = pair_controls(keys, ["ctl-a", "ctl-b"], mix)
    assert pairs[("live", "twin-b")] == "ctl-b" and pairs[("live", "new-a")] == "ctl-a"
    assert pairs[("live", "ctl-a")] == "" and pairs[("live", "ctl-b")] == ""
    assert pairs[("live", "nowhere")] == "ctl-a"  # no endpoint data yet: the first control
    assert pairs[("batch-1", "twin-b")] == ""  # no control in that experiment
    assert overlap({"/a": 1}, {"/a": 5, "/b": 5}) == 0.5
