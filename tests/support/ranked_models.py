"""A search service and a rebuilt index for the ranked-list tests (tests.support.ranked_models).

The champion returns documents ``d<i>-0`` .. ``d<i>-9`` for request ``i``; the
rebuilt index answers every 4th request with its first two documents swapped
and its third replaced by ``new-<i>``, and everything else unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any


def champion_results(payload: dict[str, Any]) -> dict[str, Any]:
    i = int(payload["i"])
    return {"results": [{"doc_id": f"d{i}-{r}", "score": 1 - r / 10} for r in range(10)]}


def rebuilt_results(payload: dict[str, Any]) -> dict[str, Any]:
    out = champion_results(payload)
    i = int(payload["i"])
    if i % 4 == 0:
        docs = out["results"]
        docs[0], docs[1] = docs[1], docs[0]
        docs[2] = {"doc_id": f"new-{i}", "score": 0.8}
    return out


async def rebuilt(payload: dict[str, Any]) -> Any:
    from shadowstream.stream_agents.challengers import ModelAnswer

    await asyncio.sleep(0.002)
    i = int(payload["i"])
    # twice the champion's tokens out, one more tool call every other request
    return ModelAnswer(
        rebuilt_results(payload),
        tokens_in=10,
        tokens_out=2 * (i % 7) + 2,
        tool_calls=1 + i % 2,
        cost=0.002,
    )
