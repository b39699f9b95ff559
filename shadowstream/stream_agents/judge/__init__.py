"""The LLM judge: verdicts (better / same / worse) on pairs the cheaper comparators left open.

* :mod:`~shadowstream.stream_agents.judge.prompt` - the prompt, reading answers,
  combining the two orders, the cache key
* :mod:`~shadowstream.stream_agents.judge.client` - one judge model (official
  ``openai`` client, any OpenAI-compatible endpoint), retries, budget
* :mod:`~shadowstream.stream_agents.judge.cache` - verdict cache (LRU + Kafka topic)
* :mod:`~shadowstream.stream_agents.judge.service` - the judge agent

The ``judge`` comparator (:mod:`shadowstream.stream_agents.comparators.judge`)
marks the pairs; the router sends them here (``<prefix>.judge``).
"""

from __future__ import annotations

from collections.abc import Mapping

from shadowstream.core.challenger_config import JudgeSpec
from shadowstream.core.config import Settings
from shadowstream.stream_agents.comparators.judge import judge_spec_of


def configured_judges(settings: Settings) -> Mapping[str, JudgeSpec]:
    """Challenger name -> its judge, for every challenger whose comparator has one."""
    out = {}
    for spec in settings.challengers:
        judge = judge_spec_of(spec)
        if judge is not None:
            out[spec.name] = judge
    return out
