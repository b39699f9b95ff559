"""Jobs for the judge agent: the pairs a comparator left to the LLM judge, as the router
sends them (``<prefix>.judge``), with what the judge reads of each answer."""

from __future__ import annotations

from typing import TypedDict

from shadowstream.core.challenger_config import JudgeSpec
from shadowstream.schemas.records import ComparisonEvent
from shadowstream.stream_agents.comparators import Comparator
from shadowstream.stream_agents.comparators.cascade import CascadeComparator
from shadowstream.stream_agents.comparators.judge import JudgeComparator
from shadowstream.stream_agents.comparison_record import parse_output
from shadowstream.stream_agents.judge.prompt import cache_key


class JudgeJob(TypedDict):
    """A pair for the judge agent (JSON on ``<prefix>.judge``)."""

    comparison: ComparisonEvent  # completed with the verdict by the judge agent
    input: str
    champion: str
    challenger: str
    key: str  # the verdict cache's key


def judge_job(
    spec: JudgeSpec,
    comparison: ComparisonEvent,
    payload: str,
    champion_text: str | None,
    challenger_text: str | None,
) -> JudgeJob:
    """The job message: the comparison to complete, and the input and both answers as
    the prompt shows them (at most ``max_chars`` each: keeps the message small)."""
    task_input = prompt_text(payload)
    champion = prompt_text(champion_text or "")
    challenger = prompt_text(challenger_text or "")
    limit = spec.max_chars
    return {
        "comparison": comparison,
        "input": task_input[:limit],
        "champion": champion[:limit],
        "challenger": challenger[:limit],
        "key": cache_key(spec, task_input, champion, challenger),
    }


def prompt_text(text: str) -> str:
    """What the judge reads: a JSON string as its text, anything else as JSON."""
    if text.startswith('"'):
        value = parse_output(text)
        if isinstance(value, str):
            return value
    return text


def comparator_judge(comparator: Comparator) -> JudgeSpec | None:
    """The judge a comparator defers to (itself, or a cascade's last step)."""
    if isinstance(comparator, CascadeComparator):
        comparator = comparator.steps[-1].comparator
    return comparator.spec if isinstance(comparator, JudgeComparator) else None
