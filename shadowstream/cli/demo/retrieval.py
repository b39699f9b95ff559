"""The retrieval demo (``shadow demo --scenario retrieval``): a search service whose index
was rebuilt, shadowed on live queries.

* champion - production's index: the top 10 documents of a query's collection,
  ranked by a fixed relevance (a hash of query and document), with the
  reranker's token usage and cost.
* ``reindexed`` - the rebuilt index (new chunking and embeddings): mostly the same
  ranking with neighbours swapped now and then; in the ``legal`` collection,
  whose documents were re-chunked, a few production documents are gone and
  new chunks take their places.
* ``agentic`` - a multi-hop retrieval agent: rewrites the query and calls the
  index several times (tool-call fan-out), spends ~2x the tokens out, close
  ranking: the resources section and the projected bill show its price.
* ``control`` - production's index re-run (A/A): ties broken differently, the
  floor for every measure.

Every challenger is judged by the ranked-list comparator (RBO at p = 0.9 over
the top 10, divergence below 0.8), so the report shows each measure's
distribution and the slices (``collection=legal``) where the rebuild differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from pathlib import Path
from typing import Any

from shadowstream.core.config import Settings, load_settings
from shadowstream.producers import ShadowEmitter

ENDPOINT = "/v1/search"
COLLECTIONS = [("docs", 0.5, 400), ("support", 0.3, 300), ("legal", 0.2, 250)]
LANGUAGES = [("en", 0.6), ("de", 0.25), ("fr", 0.15)]
TERMS = ["refund", "invoice", "contract", "gdpr", "export", "api", "token", "limit", "sso",
         "retention", "audit", "webhook", "latency", "backup", "region", "billing"]  # fmt: skip
K = 10
PRICE_IN, PRICE_OUT = 0.0005, 0.0015  # per 1k tokens, the reranker's list price


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest(), "big")


def _pick(options: list[tuple[Any, ...]], rng: random.Random) -> tuple[Any, ...]:
    roll, acc = rng.random(), 0.0
    for option in options:
        acc += option[1]
        if roll < acc:
            return option
    return options[-1]


def ranking(query: str, collection: str, size: int, depth: int = K) -> list[tuple[str, float]]:
    """Production's ranking: a fixed relevance per (query, document), best first."""
    pool = [f"{collection}-{(_h(query, str(i)) % size) + 1}" for i in range(depth * 3)]
    scored = {doc: (_h(query, doc) % 10_000) / 10_000 for doc in pool}
    best = sorted(scored.items(), key=lambda kv: -kv[1])[:depth]
    return [(doc, round(score, 4)) for doc, score in best]


def _answer(ranked: list[tuple[str, float]]) -> dict[str, Any]:
    return {"results": [{"doc_id": d, "score": s} for d, s in ranked], "index": "v7"}


def usage(query: str, factor: float = 1.0) -> dict[str, Any]:
    tokens_in = 180 + 6 * len(query.split()) + _h(query, "in") % 60
    tokens_out = int((40 + _h(query, "out") % 50) * factor)
    return {"tokens_in": tokens_in, "tokens_out": tokens_out}


def _latency_ms(query: str, factor: float = 1.0) -> float:
    return (random.lognormvariate(3.3, 0.3) + len(query) * 0.05) * factor


def _swap_neighbours(ranked: list[tuple[str, float]], rate: float) -> list[tuple[str, float]]:
    out = list(ranked)
    for i in range(len(out) - 1):
        if random.random() < rate:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


async def reindexed(payload: Any, context: Any = None) -> Any:
    """The rebuilt index: neighbours swapped; legal documents re-chunked (some gone)."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    query, collection, size = payload["query"], payload["collection"], payload["size"]
    await asyncio.sleep(_latency_ms(query, 0.9) / 1000)
    ranked = _swap_neighbours(ranking(query, collection, size), 0.06)
    if collection == "legal":
        for i in range(len(ranked)):
            if random.random() < 0.18:  # a re-chunked document: a new id in its place
                ranked[i] = (f"legal-chunk-{_h(query, str(i)) % 9000}", ranked[i][1])
    return ModelAnswer(_answer(ranked), tool_calls=1, **usage(query))


async def agentic(payload: Any, context: Any = None) -> Any:
    """A multi-hop retrieval agent: query rewrites and several index calls."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    query, collection, size = payload["query"], payload["collection"], payload["size"]
    hops = 1 + min(int(random.expovariate(0.45)), 9)
    await asyncio.sleep(_latency_ms(query, 1.0 + 0.4 * hops) / 1000)
    ranked = _swap_neighbours(ranking(query, collection, size), 0.12)
    spend = usage(query, factor=1.4 + 0.35 * hops)
    spend["tokens_in"] += 150 * (hops - 1)
    return ModelAnswer(_answer(ranked), tool_calls=hops, **spend)


async def control(payload: Any, context: Any = None) -> Any:
    """Production's index re-run: ties broken differently now and then."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    query, collection, size = payload["query"], payload["collection"], payload["size"]
    await asyncio.sleep(_latency_ms(query) / 1000)
    ranked = _swap_neighbours(ranking(query, collection, size), 0.01)
    return ModelAnswer(_answer(ranked), tool_calls=1, **usage(query))


def serve_one(emitter: ShadowEmitter, rng: random.Random | None = None) -> None:
    """One production search: the request, and production's answer with its usage."""
    rng = rng or random.Random()
    collection, _, size = _pick(COLLECTIONS, rng)
    language = _pick(LANGUAGES, rng)[0]
    query = " ".join(rng.choice(TERMS) for _ in range(rng.randint(2, 6)))
    payload = {"query": query, "collection": collection, "size": size, "k": K}
    rid = str(uuid.uuid4())
    emitter.emit_request(
        rid, ENDPOINT, payload, attributes={"collection": collection, "language": language}
    )
    spend = usage(query)
    cost = (spend["tokens_in"] * PRICE_IN + spend["tokens_out"] * PRICE_OUT) / 1000
    emitter.emit_response(
        rid,
        _answer(ranking(query, collection, size)),
        _latency_ms(query),
        tool_calls=1,
        cost=cost,
        **spend,
    )


RANKED = {
    "kind": "ranked",
    "options": {
        "path": "$.results",
        "id_path": "doc_id",
        "k": K,
        "measure": "rbo",
        "p": 0.9,
        "threshold": 0.8,
    },
}


def retrieval_settings(broker_url: str, data_dir: Path) -> Settings:
    def challenger(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "callable": f"shadowstream.cli.demo.retrieval:{name}",
            "timeout_seconds": 2.0,
            "concurrency": 64,
            "comparator": RANKED,
            "cost_per_1k_tokens_in": PRICE_IN,
            "cost_per_1k_tokens_out": PRICE_OUT,
            **extra,
        }

    return load_settings(
        None,
        broker_url=broker_url,
        clickhouse_url=f"chdb://{data_dir.resolve() / 'chdb'}",
        partitions=4,
        kafka_session_timeout_ms=6000,
        join_window_seconds=5.0,
        late_retention_seconds=60.0,
        resources={"limits": {"tokens_out": 120}},
        gate={
            "latency_baseline": "control",
            "min_samples": 200,
            "min_slice_agreement": 0.85,
            "resources": {"max_p95_increase_pct": {"tokens_out": 20, "tool_calls": 50}},
        },
        challengers=[
            challenger("reindexed", model="index-v8"),
            challenger("agentic", model="agent-rag-v1", sample_rate=0.5),
            challenger("control", model="index-v7", control=True),
        ],
    )
