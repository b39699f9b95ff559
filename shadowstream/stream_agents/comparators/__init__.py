"""Comparators: built-ins and the factory that builds one from config.

=========  ==========================================================  ==========
kind       decides                                                     cost
=========  ==========================================================  ==========
exact      equal (optionally normalized) text / canonical JSON        ~1 µs
json       field-level diff: paths, ignore globs, tolerance, sets     ~5-50 µs
label      same label, or champion's label in challenger's top-k      ~2 µs
text       rapidfuzz similarity >= threshold (optionally at a path)   ~5-100 µs
ranked     ranked lists: RBO / overlap@k / NDCG@k >= threshold        ~10-50 µs
semantic   sentence-embedding cosine >= threshold (extra: semantic)   ~ms
judge      an LLM, both orders, by the judge agent (extra: llm)        ~s, $
cascade    cheap steps first, expensive ones only when undecided
=========  ==========================================================  ==========

Tool calls (``tool_trace``) are compared by the ComparisonBuilder with
:class:`ToolCallComparator`, alongside whichever comparator judges outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import IDENTICAL, Comparator, NoiseAware, Verdict
from shadowstream.stream_agents.comparators.cascade import CascadeComparator, CascadeStep
from shadowstream.stream_agents.comparators.exact import ExactComparator
from shadowstream.stream_agents.comparators.json_diff import JsonComparator
from shadowstream.stream_agents.comparators.label import LabelComparator
from shadowstream.stream_agents.comparators.ranked import RankedListComparator
from shadowstream.stream_agents.comparators.text import TextComparator
from shadowstream.stream_agents.comparators.tool_calls import (
    ToolCall,
    ToolCallComparator,
    parse_tool_trace,
)

__all__ = [
    "IDENTICAL",
    "CascadeComparator",
    "Comparator",
    "ExactComparator",
    "JsonComparator",
    "LabelComparator",
    "NoiseAware",
    "RankedListComparator",
    "TextComparator",
    "ToolCall",
    "ToolCallComparator",
    "Verdict",
    "build_comparator",
    "known_kinds",
    "parse_tool_trace",
]


def _semantic(**options: Any) -> Comparator:
    from shadowstream.stream_agents.comparators.semantic import SemanticComparator

    comparator: Comparator = SemanticComparator(**options)
    return comparator


def _judge(**options: Any) -> Comparator:
    from shadowstream.stream_agents.comparators.judge import JudgeComparator

    comparator: Comparator = JudgeComparator(**options)
    return comparator


_FACTORIES: dict[str, Callable[..., Comparator]] = {
    "judge": _judge,
    "exact": ExactComparator,
    "json": JsonComparator,
    "text": TextComparator,
    "label": LabelComparator,
    "ranked": RankedListComparator,
    "semantic": _semantic,
}


def known_kinds() -> list[str]:
    return sorted([*_FACTORIES, "cascade"])


def build_comparator(kind: str, options: Mapping[str, Any] | None = None) -> Comparator:
    """Build a comparator from its config name and options; errors are ConfigError."""
    options = dict(options or {})
    if kind == "cascade":
        return _build_cascade(options)
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ConfigError(f"unknown comparator {kind!r} (known: {', '.join(known_kinds())})")
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for comparator {kind!r}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"bad options for comparator {kind!r}: {exc}") from None


def _build_cascade(options: dict[str, Any]) -> CascadeComparator:
    """``steps = [{kind, options, decide}, ...]``, ``when_undecided``."""
    raw_steps = options.pop("steps", None)
    when_undecided = options.pop("when_undecided", "undecided")
    if options:
        raise ConfigError(f"bad options for comparator 'cascade': unknown {sorted(options)}")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError("comparator 'cascade' needs steps = [{kind = ...}, ...]")
    steps = []
    for i, raw in enumerate(raw_steps):
        if isinstance(raw, str):
            raw = {"kind": raw}
        if not isinstance(raw, dict) or "kind" not in raw:
            raise ConfigError(f"cascade step {i}: expected {{kind = ..., options = {{...}}}}")
        unknown = set(raw) - {"kind", "options", "decide"}
        if unknown:
            raise ConfigError(f"cascade step {i}: unknown keys {sorted(unknown)}")
        decide = raw.get("decide", "any")
        if decide not in ("any", "agree", "diverge"):
            raise ConfigError(f"cascade step {i}: decide must be 'any', 'agree' or 'diverge'")
        if raw["kind"] == "judge" and i != len(raw_steps) - 1:
            raise ConfigError("cascade: the 'judge' step decides later and must be the last one")
        steps.append(CascadeStep(build_comparator(raw["kind"], raw.get("options")), decide))
    return CascadeComparator(steps, when_undecided)
