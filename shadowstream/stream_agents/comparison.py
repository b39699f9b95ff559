"""Turn a joined (request, champion, challenger) into a ComparisonEvent record.

Per challenger, the builder applies:

1. its comparator to the two outputs (``diverged``, score, summary, paths).
   Byte-identical outputs skip parsing and comparing altogether (the common
   case on a hot path);
2. noise: a ``control`` challenger's comparisons teach the NoiseLearner
   which paths differ champion vs champion, diffed with that control's own
   comparator options, per endpoint; every JSON comparison on that endpoint,
   the control's own included, leaves those paths out (``ignored_paths`` lists
   them, the summary marks them "(noise)"). Until the endpoint's model is
   ready (``min_samples`` control comparisons), comparisons that noise could
   change are *provisional*: ``diverged`` and the score are null (so no
   statistic counts them as divergence or agreement), ``noise_provisional``
   is true and the summary says so;
3. tool calls: when the responses carry a ``tool_trace``, their calls are
   compared (names, arguments, count) and the differences are added to the
   summary and paths (``tool_calls[1].name``); in ``diverge`` mode they also
   count as divergence;
4. output format: the declared JSON Schema is checked on both outputs,
   separately from divergence; the first error is appended to the summary;
5. the LLM judge: a pair its comparator left to the ``judge`` (the last
   cascade step) is handed to ``on_judge`` as a job for the judge agent,
   besides being emitted as usual (see shadowstream.stream_agents.judge).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shadowstream.schemas.records import ComparisonEvent, Outcome, RequestEvent, ResponseEvent
from shadowstream.stream_agents.comparators import (
    IDENTICAL,
    Comparator,
    JsonComparator,
    NoiseAware,
    Verdict,
)
from shadowstream.stream_agents.comparators.base import clip
from shadowstream.stream_agents.comparators.judge import JUDGE
from shadowstream.stream_agents.comparison_record import (
    comparison_record,
    parse_output,
    trace_ids,
)
from shadowstream.stream_agents.control_coverage import ControlCoverage, ExperimentLookup
from shadowstream.stream_agents.judge.jobs import JudgeJob, comparator_judge, judge_job
from shadowstream.stream_agents.noise import NoiseLearner, Scope
from shadowstream.stream_agents.tool_call_policy import (
    ToolCallPolicy,
    tool_call_verdict,
    with_tool_calls,
)

if TYPE_CHECKING:
    from shadowstream.core.config import Settings

# importable from here as before the split
__all__ = [
    "PROVISIONAL_NOTE",
    "BuilderStats",
    "ComparisonBuilder",
    "FormatCheck",
    "ToolCallPolicy",
    "build_comparison_builder",
    "parse_output",
    "trace_ids",
]

# output -> True (valid) / False (invalid); may also have explain(output) -> str | None
FormatCheck = Callable[[Any], bool]

_NO_REQUEST: dict[str, Any] = {}
PROVISIONAL_NOTE = "provisional (noise model not ready; left out of divergence)"


@dataclass(slots=True)
class BuilderStats:
    compared: int = 0
    identical_bytes: int = 0
    noise_filtered: int = 0
    control_observed: int = 0
    comparator_errors: int = 0
    tool_call_diffs: int = 0
    provisional: int = 0


class ComparisonBuilder:
    """Callable the join engine uses to build each comparison.

    ``comparators`` maps challenger name to its comparator; ``format_checks``
    maps challenger name to a validator of output format (applied to both
    sides: the champion's output is checked against the same declared format).
    ``controls`` names the challengers that re-run the champion; with a
    ``noise`` learner they teach it (each diffed as ``control_differs`` says,
    default: the learner's own), and every comparison, theirs included, is
    judged without the paths it learned. ``control_endpoints`` maps each
    control to the endpoint globs it covers (default: all): an endpoint no
    control covers has no noise model to wait for. ``tool_calls`` maps
    challenger name to how its tool calls are compared (default: report
    differences, do not count them).
    """

    def __init__(
        self,
        comparators: Mapping[str, Comparator],
        format_checks: Mapping[str, FormatCheck] | None = None,
        models: Mapping[str, str] | None = None,
        default: Comparator | None = None,
        clock: Callable[[], float] = time.time,
        *,
        controls: frozenset[str] | set[str] | tuple[str, ...] = (),
        noise: NoiseLearner | None = None,
        tool_calls: Mapping[str, ToolCallPolicy] | None = None,
        control_differs: Mapping[str, JsonComparator | None] | None = None,
        control_endpoints: Mapping[str, tuple[str, ...]] | None = None,
        shadow_endpoints: tuple[str, ...] = ("*",),
        write_endpoints: tuple[str, ...] = (),
    ) -> None:
        self.comparators = dict(comparators)
        self.format_checks = dict(format_checks or {})
        self.models = dict(models or {})
        self.default = default or JsonComparator()
        self.controls = frozenset(controls)
        self.noise = noise
        self.tool_calls = dict(tool_calls or {})
        self._default_tools = ToolCallPolicy()
        self._clock = clock
        self._noise_aware: dict[str, bool] = {}
        self._measuring: dict[str, bool] = {}
        self.control_differs = dict(control_differs or {})
        self.coverage = ControlCoverage(
            {n: tuple((control_endpoints or {}).get(n, ("*",))) for n in self.controls},
            shadow_endpoints,
            write_endpoints,
        )
        self.stats = BuilderStats()
        # challenger -> its judge; jobs go to on_judge (the router sends them on)
        self.judges = {
            n: j for n, c in self.comparators.items() if (j := comparator_judge(c)) is not None
        }
        self.on_judge: Callable[[JudgeJob], None] | None = None

    @property
    def experiment_challengers(self) -> ExperimentLookup:
        """Batch experiment -> its challengers: a run that asks no control does not wait."""
        return self.coverage.experiment_challengers

    @experiment_challengers.setter
    def experiment_challengers(self, lookup: ExperimentLookup) -> None:
        self.coverage.experiment_challengers = lookup

    @classmethod
    def from_settings(cls, settings: Settings) -> ComparisonBuilder:
        """Everything the challengers' config declares: comparators, formats, controls, noise."""
        from shadowstream.stream_agents.comparison_setup import builder_from_settings

        return builder_from_settings(cls, settings)

    def comparator_for(self, challenger: str) -> Comparator:
        return self.comparators.get(challenger, self.default)

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self.stats)
        if self.noise is not None:
            out["noise"] = self.noise.snapshot()
        return out

    # -- judging ------------------------------------------------------------------------
    def _is_noise_aware(self, name: str, comparator: Comparator) -> bool:
        aware = self._noise_aware.get(name)
        if aware is None:
            aware = self._noise_aware[name] = isinstance(comparator, NoiseAware)
        return aware

    def _measures_identical(self, name: str, comparator: Comparator) -> bool:
        """Comparators that store measures (ranked lists) judge identical outputs too: the
        measures of every comparison make their distribution, not only of differing ones."""
        measures = self._measuring.get(name)
        if measures is None:
            measures = self._measuring[name] = bool(getattr(comparator, "stores_measures", False))
        return measures

    def _noise_scope(self, request: Mapping[str, Any]) -> Scope | None:
        if self.noise is None:
            return None
        return self.noise.scope(request.get("service", ""), request.get("endpoint", ""))

    def _provisional(
        self, name: str, comparator: Comparator, scope: Scope | None, experiment: str
    ) -> bool:
        """Judged before this endpoint's noise model is ready, by a comparator noise affects,
        where a control is on its way (live traffic it covers, or a batch run that asked one)."""
        if scope is None or self.noise is None or self.noise.ready(scope):
            return False
        return self._is_noise_aware(name, comparator) and self.coverage.control_coming(
            scope, experiment
        )

    def _judge(
        self, name: str, comparator: Comparator, scope: Scope | None, a: Any, b: Any
    ) -> Verdict:
        noise = self.noise
        if noise is not None and scope is not None:
            if name in self.controls:
                self.stats.control_observed += 1
                noise.observe(scope, a, b, self.control_differs.get(name))
            if self._is_noise_aware(name, comparator):
                noisy = noise.noisy(scope)
                if noisy:
                    self.stats.noise_filtered += 1
                    return comparator.compare_ignoring(a, b, noisy)  # type: ignore[attr-defined,no-any-return]
        return comparator.compare(a, b)

    def __call__(
        self,
        request: RequestEvent | None,
        champion: ResponseEvent | None,
        challenger: ResponseEvent | None,
        name: str,
        outcome: Outcome,
    ) -> ComparisonEvent:
        champion_ok = champion is not None and champion["status"] == "ok"
        challenger_ok = challenger is not None and challenger["status"] == "ok"
        champion_text: str | None = champion["output"] if champion_ok else None  # type: ignore[index]
        challenger_text: str | None = challenger["output"] if challenger_ok else None  # type: ignore[index]
        same_bytes = champion_ok and challenger_ok and champion_text == challenger_text
        comparator = self.comparators.get(name, self.default)  # comparator_for, inlined
        verdict: Verdict | None = None
        provisional = False
        outputs: tuple[Any, Any] | None = None  # (champion, challenger) outputs, once parsed
        if champion_ok and challenger_ok:
            assert champion is not None and challenger is not None
            verdict, provisional, outputs = self._compare(
                request, champion, challenger, name, comparator, same_bytes
            )
        summary = verdict.summary if verdict is not None else ""
        if provisional:
            summary = clip(f"{PROVISIONAL_NOTE}: {summary}", 500)
        champion_valid: bool | None = None
        challenger_valid: bool | None = None
        check = self.format_checks.get(name)
        if check is not None and (champion_ok or challenger_ok):
            if outputs is None:
                champion_out = parse_output(champion_text) if champion_ok else None
                challenger_out = (
                    (champion_out if same_bytes else parse_output(challenger_text))
                    if challenger_ok
                    else None
                )
                outputs = (champion_out, challenger_out)
            champion_valid, challenger_valid, notes = self._check_formats(
                check, outputs, champion_ok, challenger_ok, same_bytes
            )
            if notes:
                summary = clip("; ".join([summary, *notes] if summary else notes), 500)
        result = comparison_record(
            request,
            champion,
            challenger,
            name,
            outcome,
            self.models.get(name, name),
            int(self._clock() * 1_000_000),
            verdict,
            provisional,
            summary,
            comparator.name,
            champion_valid,
            challenger_valid,
        )
        if (
            verdict is not None
            and verdict.by == JUDGE
            and name in self.judges
            and self.on_judge is not None
        ):
            self._send_to_judge(result, name, request, champion_text, challenger_text)
        return result

    def _compare(
        self,
        request: RequestEvent | None,
        champion: ResponseEvent,
        challenger: ResponseEvent,
        name: str,
        comparator: Comparator,
        same_bytes: bool,
    ) -> tuple[Verdict, bool, tuple[Any, Any] | None]:
        """Both answered: the verdict (outputs, then tool calls), whether it is provisional,
        and the parsed outputs (None when byte-identical outputs were not parsed)."""
        self.stats.compared += 1
        scope = self._noise_scope(request or {}) if self.noise is not None else None
        outputs: tuple[Any, Any] | None = None
        if (
            same_bytes
            and not (scope is not None and name in self.controls)
            and not self._measures_identical(name, comparator)
        ):
            self.stats.identical_bytes += 1
            verdict = IDENTICAL
        else:
            champion_out = parse_output(champion["output"])
            challenger_out = champion_out if same_bytes else parse_output(challenger["output"])
            outputs = (champion_out, challenger_out)
            try:
                verdict = self._judge(name, comparator, scope, champion_out, challenger_out)
            except Exception as exc:  # a comparator bug must not stop the join
                self.stats.comparator_errors += 1
                verdict = Verdict(None, 0.0, f"comparator error: {type(exc).__name__}: {exc}")
        try:
            policy = self.tool_calls.get(name, self._default_tools)
            tools = tool_call_verdict(policy, champion, challenger)
            if tools is not None:
                self.stats.tool_call_diffs += 1
        except Exception as exc:  # e.g. a trace nested too deeply: a note, not a stop
            self.stats.comparator_errors += 1
            tools = ("report", Verdict(None, 0.0, f"tool-call comparison error: {exc!r}"))
        if tools is not None:
            verdict = with_tool_calls(verdict, *tools)
        # after the control's own observation: it may have made the model ready
        provisional = scope is not None and self._provisional(
            name, comparator, scope, (request or _NO_REQUEST).get("experiment_id") or "live"
        )
        if provisional:
            self.stats.provisional += 1
        return verdict, provisional, outputs

    def _check_formats(
        self,
        check: FormatCheck,
        outputs: tuple[Any, Any],
        champion_ok: bool,
        challenger_ok: bool,
        same_bytes: bool,
    ) -> tuple[bool | None, bool | None, list[str]]:
        """(champion valid, challenger valid, notes for the summary) of the declared format."""
        champion_out, challenger_out = outputs
        champion_valid: bool | None = None
        challenger_valid: bool | None = None
        notes: list[str] = []
        try:
            if champion_ok:
                champion_valid = check(champion_out)
                if not champion_valid:
                    notes.append(_format_note("champion", check, champion_out))
            if challenger_ok:
                challenger_valid = champion_valid if same_bytes else check(challenger_out)
                if not challenger_valid:
                    notes.append(_format_note("challenger", check, challenger_out))
        except Exception as exc:  # a validator that cannot cope: unknown, said so
            self.stats.comparator_errors += 1
            champion_valid = challenger_valid = None
            notes.append(f"format check error: {type(exc).__name__}: {exc}")
        return champion_valid, challenger_valid, notes

    def _send_to_judge(
        self,
        comparison: ComparisonEvent,
        name: str,
        request: RequestEvent | None,
        champion_text: str | None,
        challenger_text: str | None,
    ) -> None:
        """A pair its comparator left to the LLM judge, as a job for the judge agent."""
        assert self.on_judge is not None
        payload = str((request or _NO_REQUEST).get("payload", ""))
        job = judge_job(self.judges[name], comparison, payload, champion_text, challenger_text)
        self.on_judge(job)


def build_comparison_builder(settings: Settings) -> ComparisonBuilder:
    """The builder a router uses for these settings (see ComparisonBuilder.from_settings)."""
    return ComparisonBuilder.from_settings(settings)


def _format_note(side: str, check: FormatCheck, output: Any) -> str:
    explain = getattr(check, "explain", None)
    reason = explain(output) if explain is not None else None
    return f"{side} format invalid" + (f" ({reason})" if reason else "")
