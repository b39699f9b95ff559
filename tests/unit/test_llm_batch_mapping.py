"""Provider batch APIs: request bodies, reading answers, prices, and result lines."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shadowstream.core.config import ChallengerSpec, load_settings
from shadowstream.core.errors import ConfigError
from shadowstream.experiments.items import BatchItem
from shadowstream.experiments.providers import custom_id
from shadowstream.experiments.providers.anthropic_batch import _result as anthropic_result
from shadowstream.experiments.providers.mapping import (
    MappingError,
    RequestMapper,
    ResponseMapper,
    batch_prices,
    cost,
)
from shadowstream.experiments.providers.openai_batch import _result as openai_result
from shadowstream.stream_agents.fanout import FanOut


def spec(**batch_api: Any) -> ChallengerSpec:
    return ChallengerSpec(
        name="llm",
        model="gpt-x",
        cost_per_1k_tokens_in=1.0,
        cost_per_1k_tokens_out=4.0,
        batch_api={"provider": "openai", **batch_api},
    )


def item(payload: str, endpoint: str = "/v1/chat") -> BatchItem:
    return BatchItem("7", endpoint, payload, "svc", "champ", {"lang": "de"})


def test_default_bodies_from_the_payload() -> None:
    mapper = RequestMapper(spec(params={"temperature": 0}))
    assert mapper.body(item('"Hallo?"'), "e:7", "e") == {
        "model": "gpt-x",
        "temperature": 0,
        "messages": [{"role": "user", "content": "Hallo?"}],
    }
    chat = '{"messages": [{"role": "system", "content": "be brief"}], "model": "other"}'
    assert mapper.body(item(chat), "e:7", "e")["model"] == "other"  # the payload's own wins
    assert mapper.body(item('{"q": 1}'), "e:7", "e")["messages"][0]["content"] == '{"q":1}'
    assert mapper.body(item("not json"), "e:7", "e")["messages"][0]["content"] == "not json"
    embeddings = RequestMapper(spec(endpoint="/v1/embeddings", model="emb"))
    assert embeddings.body(item('"text"'), "e:7", "e") == {"input": "text", "model": "emb"}


def test_template_bodies_and_anthropic_defaults() -> None:
    template = {
        "messages": [{"role": "user", "content": "Translate: ${payload.text}"}],
        "metadata": {"id": "$request_id", "lang": "${attributes}"},
    }
    body = RequestMapper(spec(request_body=template, params={"max_tokens": 5})).body(
        item('{"text": "Haus"}'), "e:7", "e"
    )
    assert body["messages"][0]["content"] == "Translate: Haus"
    assert body["metadata"]["id"] == "e:7" and body["max_tokens"] == 5
    claude = ChallengerSpec(name="c", batch_api={"provider": "anthropic", "model": "claude-x"})
    assert RequestMapper(claude).body(item('"hi"'), "e:7", "e") == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "claude-x",
        "max_tokens": 1024,
    }


CHAT = {
    "choices": [{"message": {"role": "assistant", "content": '{"label": "spam"}'}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 4},
}


def test_answers_are_read_per_provider() -> None:
    assert ResponseMapper(spec().batch_api).output(CHAT) == ('{"label": "spam"}', 11, 4)  # type: ignore[arg-type]
    as_json = ResponseMapper(spec(output_json=True).batch_api)  # type: ignore[arg-type]
    assert as_json.output(CHAT)[0] == {"label": "spam"}
    tools = {"choices": [{"message": {"content": None, "tool_calls": [{"id": "t1"}]}}]}
    assert ResponseMapper(spec().batch_api).output(tools)[0] == [{"id": "t1"}]  # type: ignore[arg-type]
    with pytest.raises(MappingError):
        ResponseMapper(spec().batch_api).output({"choices": []})  # type: ignore[arg-type]
    with pytest.raises(MappingError, match=r"answer\.text"):
        ResponseMapper(spec(output_path="answer.text").batch_api).output(CHAT)  # type: ignore[arg-type]
    claude = ChallengerSpec(name="c", batch_api={"provider": "anthropic"}).batch_api
    message = {
        "content": [
            {"type": "text", "text": "Bon"},
            {"type": "tool_use"},
            {"type": "text", "text": "jour"},
        ],
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }
    assert ResponseMapper(claude).output(message) == ("Bonjour", 3, 2)  # type: ignore[arg-type]
    responses = spec(endpoint="/v1/responses").batch_api
    body = {
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "ok"}]}],
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    assert ResponseMapper(responses).output(body) == ("ok", 5, 1)  # type: ignore[arg-type]


def test_batch_price_is_half_the_live_one_unless_given() -> None:
    assert batch_prices(spec()) == (0.5, 2.0)
    assert batch_prices(spec(price_factor=0.4, cost_per_1k_tokens_out=1.0)) == (0.4, 1.0)
    assert cost((0.5, 2.0), 1000, 500) == pytest.approx(1.5)
    assert cost((0.5, 2.0), None, 500) is None  # tokens unknown: cost unknown
    assert cost((None, None), 10, 10) is None
    free = ChallengerSpec(name="f", batch_api={"provider": "openai"})
    assert batch_prices(free) == (None, None)


def test_custom_ids_fit_anthropic_and_are_stable() -> None:
    long_id = "batch-1:" + "x" * 500
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", custom_id(long_id))
    assert custom_id("a:1") == custom_id("a:1") != custom_id("a:2")


def test_result_lines_of_both_providers() -> None:
    ok = openai_result({"custom_id": "s1", "response": {"status_code": 200, "body": CHAT}})
    assert ok.kind == "succeeded" and ok.body == CHAT
    failed = openai_result(
        {
            "custom_id": "s2",
            "response": {
                "status_code": 400,
                "body": {"error": {"message": "bad model", "type": "invalid_request_error"}},
            },
        }
    )
    assert failed.kind == "errored" and failed.error == "HTTP 400 invalid_request_error: bad model"
    expired = openai_result(
        {
            "custom_id": "s3",
            "response": None,
            "error": {"code": "batch_expired", "message": "too late"},
        }
    )
    assert (expired.kind, expired.error) == ("expired", "batch_expired: too late")
    assert (
        openai_result({"custom_id": "s4", "error": {"code": "batch_cancelled"}}).kind == "canceled"
    )
    errored = anthropic_result(
        {
            "custom_id": "a",
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "busy"},
                },
            },
        }
    )
    assert (errored.kind, errored.error) == ("errored", "overloaded_error: busy")
    assert anthropic_result({"custom_id": "b", "result": {"type": "expired"}}).kind == "expired"
    odd = anthropic_result({"custom_id": "c", "result": {"type": "mystery"}})
    assert odd.kind == "errored" and "mystery" in (odd.error or "")


def test_batch_only_challengers_take_no_live_traffic_and_answered_ones_skip_limits() -> None:
    with pytest.raises(ConfigError, match="batch_api"):
        load_settings(None, challengers=[{"name": "x"}])
    with pytest.raises(ConfigError, match="not both"):
        load_settings(
            None, challengers=[{"name": "x", "callable": "m:f", "http": {"url": "http://h"}}]
        )
    settings = load_settings(
        None,
        challengers=[
            {"name": "batch-only", "batch_api": {"provider": "anthropic"}},
            {"name": "both", "callable": "m:f", "max_rps": 1, "batch_api": {"provider": "openai"}},
        ],
        write_endpoints=["/write"],
    )
    assert not settings.challenger("batch-only").live and settings.challenger("both").live
    fanout = FanOut(settings.challengers, write_endpoints=settings.write_endpoints)
    assert fanout.route({"request_id": "r", "endpoint": "/q"}) == ["both"]
    batch = {"request_id": "e:1", "endpoint": "/q", "experiment_id": "e"}
    names = ["batch-only", "both"]
    answered = frozenset(names)
    # answered by a batch API: the max_rps of 1 does not apply, the spend is already made
    for i in range(5):
        assert fanout.route({**batch, "request_id": f"e:{i}"}, names, answered) == names
    # the endpoint guard still does
    assert fanout.route({**batch, "endpoint": "/write"}, names, answered) == []
