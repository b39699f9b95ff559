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
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from shadowstream.stream_agents.comparators import (
    IDENTICAL,
    Comparator,
    JsonComparator,
    NoiseAware,
    ToolCallComparator,
    Verdict,
    build_comparator,
)
from shadowstream.stream_agents.comparators.base import clip
from shadowstream.stream_agents.comparators.cascade import CascadeComparator
from shadowstream.stream_agents.comparators.judge import JUDGE, JudgeComparator
from shadowstream.stream_agents.control_coverage import ControlCoverage, ExperimentLookup
from shadowstream.stream_agents.judge.prompt import cache_key
from shadowstream.stream_agents.noise import NoiseLearner, Scope

if TYPE_CHECKING:
    from shadowstream.core.challenger_config import JudgeSpec
    from shadowstream.core.config import Settings

Event = dict[str, Any]
# output -> True (valid) / False (invalid); may also have explain(output) -> str | None
FormatCheck = Callable[[Any], bool]

ToolCallMode = str  # "off" | "report" | "diverge"
PROVISIONAL_NOTE = "provisional (noise model not ready; left out of divergence)"


def parse_output(text: str | None) -> Any:
    """Outputs travel as JSON text; a non-JSON string is compared as that string."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


_NO_USAGE: dict[str, Any] = {}
_HEX = frozenset("0123456789abcdef")


def trace_ids(traceparent: str | None) -> tuple[str | None, str | None]:
    """(trace id, span id) of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``)."""
    if not traceparent or len(traceparent) != 55:
        return None, None
    trace_id, span_id = traceparent[3:35], traceparent[36:52]
    if not (set(trace_id) <= _HEX and set(span_id) <= _HEX):
        return None, None
    return trace_id, span_id


def _usage(event: Event | None, key: str) -> Any:
    if event is None:
        return None
    usage = event.get("usage")
    return usage.get(key) if usage else None


@dataclass(frozen=True, slots=True)
class ToolCallPolicy:
    mode: ToolCallMode = "report"
    comparator: ToolCallComparator = field(default_factory=ToolCallComparator)


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
        self.judges = {n: j for n, c in self.comparators.items() if (j := _judge_of(c)) is not None}
        self.on_judge: Callable[[dict[str, Any]], None] | None = None

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
        from shadowstream.stream_agents.formats import json_schema_check

        comparators: dict[str, Comparator] = {}
        format_checks: dict[str, FormatCheck] = {}
        tool_calls: dict[str, ToolCallPolicy] = {}
        for spec in settings.challengers:
            comparators[spec.name] = build_comparator(spec.comparator.kind, spec.comparator.options)
            if spec.output_schema is not None:
                format_checks[spec.name] = json_schema_check(spec.output_schema)
            tools = spec.comparator.tool_calls
            tool_calls[spec.name] = ToolCallPolicy(
                tools.mode,
                ToolCallComparator(
                    ordered=tools.ordered,
                    compare_arguments=tools.compare_arguments,
                    ignore_arguments=tools.ignore_arguments,
                    abs_tol=tools.abs_tol,
                    rel_tol=tools.rel_tol,
                ),
            )
        controls = [s for s in settings.challengers if s.control]
        noise = None
        if settings.noise.enabled and controls:
            noise = NoiseLearner(
                min_rate=settings.noise.min_rate,
                min_samples=settings.noise.min_samples,
                window=settings.noise.window,
                max_paths=settings.noise.max_paths,
                per_endpoint=settings.noise.per_endpoint,
            )
        differs: dict[str, JsonComparator | None] = {}
        for spec in controls:
            # each control teaches its endpoints with its own structural options
            comparator = comparators[spec.name]
            differs[spec.name] = (
                comparator.without_ignores() if isinstance(comparator, JsonComparator) else None
            )
        covered = {spec.name: tuple(spec.endpoints) for spec in controls}
        return cls(
            comparators,
            format_checks,
            {s.name: s.model_id for s in settings.challengers},
            controls=frozenset(covered),
            noise=noise,
            tool_calls=tool_calls,
            control_differs=differs,
            control_endpoints=covered,
            shadow_endpoints=tuple(settings.shadow_endpoints),
            write_endpoints=tuple(settings.write_endpoints),
        )

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

    def _noise_scope(self, request: Event) -> Scope | None:
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

    def _tool_verdict(
        self, name: str, champion: Event, challenger: Event
    ) -> tuple[str, Verdict] | None:
        policy = self.tool_calls.get(name, self._default_tools)
        if policy.mode == "off":
            return None
        a = _trace(champion)
        if a is None:
            return None
        b = _trace(challenger)
        if b is None:
            return None
        verdict = policy.comparator.compare(a, b)
        if not verdict.diverged:
            return None
        self.stats.tool_call_diffs += 1
        return policy.mode, verdict

    def __call__(
        self,
        request: Event | None,
        champion: Event | None,
        challenger: Event | None,
        name: str,
        outcome: str,
    ) -> Event:
        champion_status = champion["status"] if champion is not None else "missing"
        challenger_status = challenger["status"] if challenger is not None else "missing"
        champion_latency = champion["latency_ms"] if champion is not None else None
        challenger_latency = challenger["latency_ms"] if challenger is not None else None
        comparator = self.comparator_for(name)
        champion_ok = champion is not None and champion_status == "ok"
        challenger_ok = challenger is not None and challenger_status == "ok"
        champion_text: str | None = champion["output"] if champion_ok else None  # type: ignore[index]
        challenger_text: str | None = challenger["output"] if challenger_ok else None  # type: ignore[index]
        same_bytes = champion_ok and challenger_ok and champion_text == challenger_text

        verdict: Verdict | None = None
        judge_job: tuple[str, str, str] | None = None
        champion_out: Any = None
        challenger_out: Any = None
        parsed = False
        provisional = False
        if champion_ok and challenger_ok:
            assert champion is not None and challenger is not None
            self.stats.compared += 1
            scope = self._noise_scope(request or {})
            if (
                same_bytes
                and not (scope is not None and name in self.controls)
                and not self._measures_identical(name, comparator)
            ):
                self.stats.identical_bytes += 1
                verdict = IDENTICAL
            else:
                champion_out = parse_output(champion_text)
                challenger_out = champion_out if same_bytes else parse_output(challenger_text)
                parsed = True
                try:
                    verdict = self._judge(name, comparator, scope, champion_out, challenger_out)
                except Exception as exc:  # a comparator bug must not stop the join
                    self.stats.comparator_errors += 1
                    verdict = Verdict(None, 0.0, f"comparator error: {type(exc).__name__}: {exc}")
            try:
                tools = self._tool_verdict(name, champion, challenger)
            except Exception as exc:  # e.g. a trace nested too deeply: a note, not a stop
                self.stats.comparator_errors += 1
                tools = ("report", Verdict(None, 0.0, f"tool-call comparison error: {exc!r}"))
            if tools is not None:
                verdict = _with_tool_calls(verdict, *tools)
            # after the control's own observation: it may have made the model ready
            experiment = (request or {}).get("experiment_id") or "live"
            provisional = self._provisional(name, comparator, scope, experiment)
            if provisional:
                self.stats.provisional += 1

        champion_valid: bool | None = None
        challenger_valid: bool | None = None
        format_notes: list[str] = []
        check = self.format_checks.get(name)
        if check is not None and (champion_ok or challenger_ok):
            if not parsed:
                champion_out = parse_output(champion_text) if champion_ok else None
                challenger_out = (
                    (champion_out if same_bytes else parse_output(challenger_text))
                    if challenger_ok
                    else None
                )
            try:
                if champion_ok:
                    champion_valid = check(champion_out)
                    if not champion_valid:
                        format_notes.append(_format_note("champion", check, champion_out))
                if challenger_ok:
                    challenger_valid = champion_valid if same_bytes else check(challenger_out)
                    if not challenger_valid:
                        format_notes.append(_format_note("challenger", check, challenger_out))
            except Exception as exc:  # a validator that cannot cope: unknown, said so
                self.stats.comparator_errors += 1
                champion_valid = challenger_valid = None
                format_notes.append(f"format check error: {type(exc).__name__}: {exc}")

        summary = verdict.summary if verdict is not None else ""
        if provisional:
            summary = clip(f"{PROVISIONAL_NOTE}: {summary}", 500)
        if format_notes:
            summary = clip("; ".join([summary, *format_notes] if summary else format_notes), 500)
        comparator_name = comparator.name
        if verdict is not None and verdict.by and verdict.by != comparator_name:
            comparator_name = f"{comparator_name}:{verdict.by}"

        source = request or {}
        trace_id, span_id = trace_ids(source.get("traceparent"))
        if verdict is not None and verdict.by == JUDGE and name in self.judges:
            judge_job = (
                _prompt_text(str(source.get("payload", ""))),
                _prompt_text(champion_text or ""),
                _prompt_text(challenger_text or ""),
            )
        response = champion or challenger or {}
        cu = (champion.get("usage") if champion is not None else None) or _NO_USAGE
        lu = (challenger.get("usage") if challenger is not None else None) or _NO_USAGE
        result = {
            "request_id": source.get("request_id") or response.get("request_id", ""),
            "challenger": name,
            "experiment_id": source.get("experiment_id") or response.get("experiment_id", "live"),
            "outcome": outcome,
            "service": source.get("service", ""),
            "endpoint": source.get("endpoint", ""),
            "champion_model": source.get("champion_model")
            or (champion["model"] if champion is not None else ""),
            "challenger_model": challenger["model"]
            if challenger is not None
            else self.models.get(name, name),
            "request_ts_us": source.get("timestamp_us") or response.get("timestamp_us", 0),
            "compared_at_us": int(self._clock() * 1_000_000),
            "champion_status": champion_status,
            "challenger_status": challenger_status,
            "champion_latency_ms": champion_latency,
            "challenger_latency_ms": challenger_latency,
            "latency_delta_ms": challenger_latency - champion_latency
            if champion_latency is not None and challenger_latency is not None
            else None,
            "diverged": verdict.diverged if verdict is not None and not provisional else None,
            "divergence_score": verdict.score if verdict is not None and not provisional else None,
            "comparator": comparator_name,
            "diff_summary": summary,
            "diff_paths": list(verdict.paths) if verdict is not None else [],
            "ignored_paths": list(verdict.ignored) if verdict is not None else [],
            "champion_format_valid": champion_valid,
            "challenger_format_valid": challenger_valid,
            "champion_tokens_in": cu.get("tokens_in"),
            "champion_tokens_out": cu.get("tokens_out"),
            "challenger_tokens_in": lu.get("tokens_in"),
            "challenger_tokens_out": lu.get("tokens_out"),
            "champion_tool_calls": cu.get("tool_calls"),
            "challenger_tool_calls": lu.get("tool_calls"),
            "champion_cost": cu.get("cost"),
            "challenger_cost": lu.get("cost"),
            "champion_error": champion.get("error") if champion is not None else None,
            "challenger_error": challenger.get("error") if challenger is not None else None,
            "attributes": source.get("attributes") or {},
            "trace_id": trace_id,
            "span_id": span_id,
            "measures": dict(verdict.measures)
            if verdict is not None and verdict.measures
            else None,
            "noise_provisional": True if provisional else None,
        }
        if judge_job is not None and self.on_judge is not None:
            self._send_to_judge(result, name, *judge_job)
        return result

    def _send_to_judge(
        self, comparison: Event, name: str, task_input: str, champion: str, challenger: str
    ) -> None:
        spec = self.judges[name]
        limit = spec.max_chars  # the prompt shows no more: keep the job message small
        job = {
            "comparison": comparison,
            "input": task_input[:limit],
            "champion": champion[:limit],
            "challenger": challenger[:limit],
            "key": cache_key(spec, task_input, champion, challenger),
        }
        assert self.on_judge is not None
        self.on_judge(job)


def _prompt_text(text: str) -> str:
    """What the judge reads: a JSON string as its text, anything else as JSON."""
    if text.startswith('"'):
        value = parse_output(text)
        if isinstance(value, str):
            return value
    return text


def _judge_of(comparator: Comparator) -> JudgeSpec | None:
    """The judge a comparator defers to (itself, or a cascade's last step)."""
    if isinstance(comparator, CascadeComparator):
        comparator = comparator.steps[-1].comparator
    return comparator.spec if isinstance(comparator, JudgeComparator) else None


def build_comparison_builder(settings: Settings) -> ComparisonBuilder:
    """The builder a router uses for these settings (see ComparisonBuilder.from_settings)."""
    return ComparisonBuilder.from_settings(settings)


def _trace(event: Event) -> Any:
    """A response's tool calls: its trace, ``[]`` if it reports zero calls, else None."""
    trace = event.get("tool_trace")
    if trace is not None:
        return parse_output(trace)
    return [] if _usage(event, "tool_calls") == 0 else None


def _with_tool_calls(verdict: Verdict, mode: str, tools: Verdict) -> Verdict:
    paths = (*verdict.paths, *tools.paths)
    summary = clip(f"{verdict.summary}; {tools.summary}" if verdict.summary else tools.summary, 500)
    if mode == "diverge":
        return replace(verdict, diverged=True, score=max(verdict.score, tools.score),
                       summary=summary, paths=paths)  # fmt: skip
    return replace(verdict, summary=summary, paths=paths)


def _format_note(side: str, check: FormatCheck, output: Any) -> str:
    explain = getattr(check, "explain", None)
    reason = explain(output) if explain is not None else None
    return f"{side} format invalid" + (f" ({reason})" if reason else "")
