"""One judge: the official ``openai`` client against any OpenAI-compatible chat endpoint.

``judge()`` asks both orders concurrently, retries an order that errs or
answers malformed (``retries`` times), and returns the combined verdict with
the tokens and cost of every call made. Spending is tracked per rolling hour
(:class:`~shadowstream.stream_agents.fanout.RollingSpend`, the challengers'
budget logic): over the judge's ``budget`` a pair is not judged (``skipped``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from shadowstream.core.challenger_config import JudgeSpec
from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.fanout import RollingSpend
from shadowstream.stream_agents.judge.prompt import (
    ERROR,
    MalformedAnswer,
    OrderVerdict,
    clip,
    combine,
    messages,
    parse_answer,
)

log = logging.getLogger(__name__)
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)\}")


@dataclass(frozen=True)
class JudgeOutcome:
    verdict: str
    rationale: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    calls: int = 0
    malformed: int = 0


@dataclass
class _Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0
    malformed: int = 0


class JudgeCallError(Exception):
    """An order could not be judged (API error, or malformed after every retry)."""


def _env(var: str, what: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise ConfigError(f"{what}: env var {var} is not set")
    return value


def resolve_headers(spec: JudgeSpec, what: str) -> dict[str, str]:
    """``headers_from_env``: header -> env var, or a template such as ``Bearer ${KEY}``."""
    headers = {}
    for header, source in spec.headers_from_env.items():
        template = source if "${" in source else "${" + source + "}"
        where = f"{what} header {header}"

        def value(match: re.Match[str], where: str = where) -> str:
            return _env(match.group(1), where)

        headers[header] = _VAR.sub(value, template)
    return headers


class JudgeClient:
    def __init__(self, spec: JudgeSpec, what: str = "judge", client: Any = None) -> None:
        self.spec = spec
        self.what = what
        if client is None:
            from openai import AsyncOpenAI

            api_key = _env(spec.api_key_env, what) if spec.api_key_env else "unused"
            client = AsyncOpenAI(
                api_key=api_key,
                base_url=spec.base_url,
                timeout=spec.timeout_seconds,
                max_retries=0,  # retries are ours: counted, and within the budget
                default_headers=resolve_headers(spec, what),
            )
        self._client = client
        self.spend = RollingSpend(pending_ttl_s=spec.timeout_seconds * 2 * (spec.retries + 1) + 5)

    def admit(self, share: float = 1.0) -> bool:
        """Within the budget: the pair is reserved at the expected spend until judge() settles
        it (call it when the pair is taken, so a burst is counted before any call returns)."""
        budget = self.spec.budget
        if budget is not None and self.spend.over(
            budget.tokens_per_hour, budget.cost_per_hour, share
        ):
            return False
        self.spend.reserve()
        return True

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        price_in = self.spec.cost_per_1k_tokens_in or 0.0
        price_out = self.spec.cost_per_1k_tokens_out or 0.0
        return (tokens_in * price_in + tokens_out * price_out) / 1000

    async def judge(self, task_input: str, champion: str, challenger: str) -> JudgeOutcome:
        """Both orders (champion first, then challenger first), combined; after admit()."""
        usage = _Usage()
        try:
            first, swapped = await asyncio.gather(
                self._order(task_input, champion, challenger, usage),
                self._order(task_input, challenger, champion, usage),
                return_exceptions=True,
            )
        finally:
            cost = self.cost(usage.tokens_in, usage.tokens_out)
            self.spend.add(usage.tokens_in + usage.tokens_out, cost, reported=usage.calls > 0)
        failures = [r for r in (first, swapped) if isinstance(r, BaseException)]
        if failures:
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure  # cancellation
            verdict, why = ERROR, f"judge failed: {failures[0]}"
        else:
            assert isinstance(first, OrderVerdict) and isinstance(swapped, OrderVerdict)
            verdict, why = combine(first, swapped)
        return JudgeOutcome(
            verdict,
            clip(why, 300),
            usage.tokens_in,
            usage.tokens_out,
            cost,
            usage.calls,
            usage.malformed,
        )

    async def _order(self, task_input: str, a: str, b: str, usage: _Usage) -> OrderVerdict:
        last = "no attempt"
        for _ in range(1 + self.spec.retries):
            try:
                content = await self._ask(task_input, a, b, usage)
                return parse_answer(content)
            except MalformedAnswer as exc:
                usage.malformed += 1
                last = f"malformed answer ({exc})"
            except Exception as exc:  # the API: HTTP errors, timeouts, refused connections
                last = f"{type(exc).__name__}: {clip(str(exc), 200)}"
                log.debug("%s: call failed: %s", self.what, last)
        raise JudgeCallError(last)

    async def _ask(self, task_input: str, a: str, b: str, usage: _Usage) -> str | None:
        spec = self.spec
        extra: dict[str, Any] = {}
        if spec.json_mode:
            extra["response_format"] = {"type": "json_object"}
        response = await self._client.chat.completions.create(
            model=spec.model,
            messages=messages(spec, task_input, a, b),
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            **extra,
        )
        usage.calls += 1
        if response.usage is not None:
            usage.tokens_in += int(response.usage.prompt_tokens or 0)
            usage.tokens_out += int(response.usage.completion_tokens or 0)
        if not response.choices:
            raise MalformedAnswer("no choices in the response")
        content: str | None = response.choices[0].message.content
        return content

    async def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            await close()
