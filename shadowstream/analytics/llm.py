"""LLM sections of the report: the judge's verdicts, and batch-API cost next to live cost.

* Judge verdicts per challenger (``comparison_judgements``): better / same /
  worse / undecided as shares of the pairs the judge considered, each with a
  Wilson interval; ``skipped`` (over the judge's budget) and ``error`` are
  counted apart. They sit beside divergence: the judge says *how* answers
  differ where the cheaper comparators could only say *that* they do.
* Cost per 1,000 answered requests of a batch run (priced at the batch price
  by the provider batch stage) next to the same challenger's live cost:
  measured on its live traffic in the report's range when there is some,
  else its tokens in this run at the configured live prices ("list price").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shadowstream.analytics.model import Counts, Rate
from shadowstream.analytics.queries import Scope

LIVE = "live"
Prices = Mapping[str, tuple[float | None, float | None]]  # challenger -> live $/1k tokens


@dataclass(frozen=True)
class JudgeSummary:
    experiment_id: str
    challenger: str
    judged: int  # better + same + worse + undecided
    better: Rate
    same: Rate
    worse: Rate
    undecided: Rate
    skipped: int  # over the judge's budget
    errors: int  # the judge failed or answered malformed every time

    @property
    def net(self) -> float | None:
        """better minus worse, as a share of the judged pairs."""
        return (self.better.k - self.worse.k) / self.judged if self.judged else None


@dataclass(frozen=True)
class CostComparison:
    experiment_id: str
    challenger: str
    batch_per_1k: float | None  # cost per 1,000 answered requests of this run
    batch_answers: int
    live_per_1k: float | None
    live_answers: int  # 0 when priced from the list price
    live_basis: str  # "measured live" | "live list price" | ""

    @property
    def saving(self) -> float | None:
        if self.batch_per_1k is None or not self.live_per_1k:
            return None
        return 1 - self.batch_per_1k / self.live_per_1k


def has_table(scope: Scope, name: str) -> bool:
    found = scope.warehouse.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        {"db": scope.warehouse.database, "name": name},
    ).scalar()
    return bool(found)


def fetch_judge(scope: Scope, names: list[str], confidence: float) -> list[JudgeSummary]:
    if not has_table(scope, "comparison_judgements"):
        return []
    out = []
    for r in scope.run("judge_verdicts", challengers=names).dicts():
        better, same, worse, undecided = (
            int(r["better"]),
            int(r["same"]),
            int(r["worse"]),
            int(r["undecided"]),
        )
        n = better + same + worse + undecided
        out.append(
            JudgeSummary(
                experiment_id=str(r["experiment_id"]),
                challenger=str(r["challenger"]),
                judged=n,
                better=Rate.of(better, n, confidence),
                same=Rate.of(same, n, confidence),
                worse=Rate.of(worse, n, confidence),
                undecided=Rate.of(undecided, n, confidence),
                skipped=int(r["skipped"]),
                errors=int(r["errors"]),
            )
        )
    return out


def _per_1k(c: Counts) -> float | None:
    return c.challenger_cost_sum / c.challenger_cost_n * 1000 if c.challenger_cost_n else None


def _list_price_per_1k(c: Counts, prices: Prices) -> float | None:
    price_in, price_out = prices.get(c.challenger, (None, None))
    if price_in is None and price_out is None:
        return None
    if c.challenger_tokens_in_n == 0 and c.challenger_tokens_out_n == 0:
        return None
    avg_in = (
        c.challenger_tokens_in_sum / c.challenger_tokens_in_n if c.challenger_tokens_in_n else 0
    )
    avg_out = (
        c.challenger_tokens_out_sum / c.challenger_tokens_out_n if c.challenger_tokens_out_n else 0
    )
    return avg_in * (price_in or 0.0) + avg_out * (price_out or 0.0)  # per 1k requests


def fetch_costs(scope: Scope, counts: list[Counts], prices: Prices) -> list[CostComparison]:
    """A row per batch-run challenger that reported cost."""
    batch = [c for c in counts if c.experiment_id != LIVE and c.challenger_cost_n]
    if not batch:
        return []
    live = {c.challenger: c for c in counts if c.experiment_id == LIVE}
    if not live and scope.experiment not in ("", LIVE):
        from shadowstream.analytics.report import fetch_counts

        live_scope = Scope(scope.warehouse, scope.window, LIVE, scope.exact)
        live = {c.challenger: c for c in fetch_counts(live_scope)}
    out = []
    for c in batch:
        measured = live.get(c.challenger)
        live_per_1k = _per_1k(measured) if measured is not None else None
        if live_per_1k is not None and measured is not None:
            basis, answers = "measured live", measured.challenger_cost_n
        else:
            live_per_1k = _list_price_per_1k(c, prices)
            basis, answers = ("live list price" if live_per_1k is not None else ""), 0
        out.append(
            CostComparison(
                c.experiment_id,
                c.challenger,
                _per_1k(c),
                c.challenger_cost_n,
                live_per_1k,
                answers,
                basis,
            )
        )
    return out
