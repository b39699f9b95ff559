"""Topic and consumer-group names, all derived from one prefix.

Every shadow topic is keyed by request_id and has the same partition count, so
everything about one request lands on the same partition number of each topic
and the join stays local to one worker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicNames:
    prefix: str = "shadow"

    @property
    def requests(self) -> str:
        """Live requests emitted by production services."""
        return f"{self.prefix}.requests"

    @property
    def batch_requests(self) -> str:
        """Requests submitted by batch experiments (kept apart from live traffic)."""
        return f"{self.prefix}.batch.requests"

    @property
    def responses(self) -> str:
        """Champion and challenger responses."""
        return f"{self.prefix}.responses"

    @property
    def comparisons(self) -> str:
        return f"{self.prefix}.comparisons"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def stats(self) -> str:
        """Counter increments reported by every agent (not keyed by request)."""
        return f"{self.prefix}.stats"

    @property
    def control(self) -> str:
        """Compacted commands (e.g. batch cancellation), read by every worker."""
        return f"{self.prefix}.control"

    @property
    def schemas(self) -> str:
        """Compacted: every writer schema in use, keyed by its fingerprint (hex)."""
        return f"{self.prefix}.schemas"

    @property
    def router_changelog(self) -> str:
        """Join markers: which requests are closed and which sides they had."""
        return f"{self.prefix}.router.changelog"

    @property
    def noise(self) -> str:
        """Compacted: the learned noise model per endpoint, so it survives restarts."""
        return f"{self.prefix}.noise"

    @property
    def judge(self) -> str:
        """Pairs for the LLM judge: the comparison, the input and both answers (JSON)."""
        return f"{self.prefix}.judge"

    @property
    def judge_cache(self) -> str:
        """The judge's verdicts by (judge, rubric, input, answers): replays do not pay twice."""
        return f"{self.prefix}.judge.cache"

    @property
    def judge_group(self) -> str:
        return f"{self.prefix}.judge"

    def challenger(self, name: str) -> str:
        return f"{self.prefix}.challenger.{name}"

    def challenger_batch(self, name: str) -> str:
        return f"{self.prefix}.challenger.{name}.batch"

    # consumer groups -------------------------------------------------------
    @property
    def router_group(self) -> str:
        return f"{self.prefix}.router"

    def challenger_group(self, name: str) -> str:
        return f"{self.prefix}.challenger.{name}"

    @property
    def sink_group(self) -> str:
        return f"{self.prefix}.sink"

    def keyed_topics(self, challengers: list[str]) -> list[str]:
        """Every topic that must share the partition count (keyed by request_id)."""
        names = [
            self.requests,
            self.batch_requests,
            self.responses,
            self.comparisons,
            self.router_changelog,
        ]
        for challenger in challengers:
            names += [self.challenger(challenger), self.challenger_batch(challenger)]
        return names
