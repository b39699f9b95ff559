"""A router's comparison builder, as the challengers' configuration declares it:
comparators, output formats, tool-call policies, controls and noise learning."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from shadowstream.core.challenger_config import ChallengerSpec, NoiseSpec
from shadowstream.stream_agents.comparators import (
    Comparator,
    JsonComparator,
    ToolCallComparator,
    build_comparator,
)
from shadowstream.stream_agents.noise import NoiseLearner
from shadowstream.stream_agents.tool_call_policy import ToolCallPolicy

if TYPE_CHECKING:
    from shadowstream.core.config import Settings
    from shadowstream.stream_agents.comparison import ComparisonBuilder, FormatCheck

B = TypeVar("B", bound="ComparisonBuilder")


def builder_from_settings(cls: type[B], settings: Settings) -> B:
    """``cls`` (a ComparisonBuilder) with everything ``settings`` declares."""
    from shadowstream.stream_agents.formats import json_schema_check

    comparators: dict[str, Comparator] = {}
    format_checks: dict[str, FormatCheck] = {}
    tool_calls: dict[str, ToolCallPolicy] = {}
    for spec in settings.challengers:
        comparators[spec.name] = build_comparator(spec.comparator.kind, spec.comparator.options)
        if spec.output_schema is not None:
            format_checks[spec.name] = json_schema_check(spec.output_schema)
        tool_calls[spec.name] = tool_call_policy(spec)
    controls = [s for s in settings.challengers if s.control]
    noise = noise_learner(settings.noise) if settings.noise.enabled and controls else None
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


def tool_call_policy(spec: ChallengerSpec) -> ToolCallPolicy:
    tools = spec.comparator.tool_calls
    return ToolCallPolicy(
        tools.mode,
        ToolCallComparator(
            ordered=tools.ordered,
            compare_arguments=tools.compare_arguments,
            ignore_arguments=tools.ignore_arguments,
            abs_tol=tools.abs_tol,
            rel_tol=tools.rel_tol,
        ),
    )


def noise_learner(spec: NoiseSpec) -> NoiseLearner:
    return NoiseLearner(
        min_rate=spec.min_rate,
        min_samples=spec.min_samples,
        window=spec.window,
        max_paths=spec.max_paths,
        per_endpoint=spec.per_endpoint,
    )
