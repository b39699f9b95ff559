"""The comparator configuration a user writes in TOML, loaded and applied end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from shadowstream.core.config import load_settings
from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparison import ComparisonBuilder
from shadowstream.stream_agents.fanout import FanOut

CONFIG = """
shadow_endpoints = ["/v1/*"]
write_endpoints = ["/v1/orders/*"]

[noise]
min_rate = 0.5
min_samples = 50

[[challengers]]
name = "control"                       # re-runs the champion: learns the noise
callable = "tests.support.realistic_models:control"
control = true

[[challengers]]
name = "api-v2"                        # JSON API
callable = "tests.support.realistic_models:candidate"
output_schema = { type = "object", required = ["label"] }
[challengers.comparator]
kind = "json"
options = { ignore_paths = ["$.request_uuid", "*.generated_at"], abs_tol = 0.01, unordered_lists = ["$.tags"] }

[[challengers]]
name = "llm-small"                     # free text, cheap steps first
callable = "tests.support.realistic_models:paraphraser"
sample_rate = 0.2
max_rps = 20
budget = { tokens_per_hour = 2_000_000, cost_per_hour = 5.0 }
cost_per_1k_tokens_in = 0.0005
cost_per_1k_tokens_out = 0.0015
[challengers.comparator]
kind = "cascade"
tool_calls = { mode = "diverge", ignore_arguments = ["$.request_id"] }
[[challengers.comparator.options.steps]]
kind = "exact"
decide = "agree"
options = { normalize_whitespace = true, case_insensitive = true, unicode_form = "NFC" }
[[challengers.comparator.options.steps]]
kind = "text"
options = { path = "$.answer", method = "token_set_ratio", undecided_between = [0.5, 0.9] }

[[challengers]]
name = "classifier"                    # labels with top-k
callable = "tests.support.realistic_models:candidate"
endpoints = ["/v1/classify"]
comparator = { kind = "label", options = { path = "$.label", top_k_path = "$.candidates", k = 3 } }
"""


def row(
    builder: ComparisonBuilder,
    name: str,
    champion: Any,
    challenger: Any,
    traces: dict[str, str] | None = None,
) -> dict[str, Any]:
    extra = traces or {}

    def response(output: Any, role: str) -> dict[str, Any]:
        return {
            "request_id": "r",
            "role": role,
            "challenger": name,
            "model": "m",
            "output": orjson.dumps(output).decode(),
            "latency_ms": 1.0,
            "status": "ok",
            "error": None,
            "usage": {"tokens_in": 1, "tokens_out": 1, "tool_calls": None, "cost": None},
            "tool_trace": extra.get(role),
            "experiment_id": "live",
        }

    request = {"request_id": "r", "service": "s", "endpoint": "/v1/chat", "experiment_id": "live"}
    return builder(
        request,
        response(champion, "champion"),
        response(challenger, "challenger"),
        name,
        "both_answered",
    )


def test_documented_toml_loads_and_judges(tmp_path: Path) -> None:
    path = tmp_path / "shadow.toml"
    path.write_text(CONFIG)
    settings = load_settings(path)
    builder = ComparisonBuilder.from_settings(settings)
    assert builder.controls == {"control"} and builder.noise is not None
    # the endpoint's noise model has seen enough control comparisons (nothing noisy):
    # comparisons are final, not provisional
    ready = {"scope": ["s", "/v1/chat"], "samples": 50, "counts": {}, "noisy": []}
    assert builder.noise.restore_state(ready)

    api = row(
        builder,
        "api-v2",
        {
            "request_uuid": "a",
            "label": "x",
            "score": 0.5,
            "tags": ["a", "b"],
            "meta": {"generated_at": 1},
        },
        {
            "request_uuid": "b",
            "label": "x",
            "score": 0.505,
            "tags": ["b", "a"],
            "meta": {"generated_at": 2},
        },
    )
    assert api["diverged"] is False
    assert set(api["ignored_paths"]) == {"$.request_uuid", "$.meta.generated_at"}

    llm = row(
        builder,
        "llm-small",
        {"answer": "Paris is the capital of France."},
        {"answer": "paris is  the capital of france."},
    )
    assert llm["diverged"] is False and llm["comparator"] == "cascade:exact"
    trace = orjson.dumps([{"name": "search", "arguments": {"q": "x", "request_id": 1}}]).decode()
    other = orjson.dumps([{"name": "browse", "arguments": {}}]).decode()
    tools = row(
        builder,
        "llm-small",
        {"answer": "Same"},
        {"answer": "Same"},
        {"champion": trace, "challenger": other},
    )
    assert tools["diverged"] is True and tools["diff_paths"] == ["tool_calls[0].name"]

    label = row(
        builder,
        "classifier",
        {"label": "billing"},
        {"label": "account", "candidates": ["account", "billing", "other"]},
    )
    assert label["diverged"] is False and label["comparator"] == "label"

    fanout = FanOut(
        settings.challengers,
        shadow_endpoints=settings.shadow_endpoints,
        write_endpoints=settings.write_endpoints,
    )
    assert fanout.route({"request_id": "q", "endpoint": "/v1/orders/create"}) == []
    assert "classifier" in fanout.route({"request_id": "q", "endpoint": "/v1/classify"})
    assert "classifier" not in fanout.route({"request_id": "q", "endpoint": "/v1/chat"})


def test_a_typo_in_comparator_options_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "shadow.toml"
    path.write_text(
        '[[challengers]]\nname = "a"\ncallable = "m:f"\n'
        'comparator = { kind = "json", options = { ignore_path = ["$.id"] } }\n'
    )
    with pytest.raises(ConfigError, match="ignore_path"):
        ComparisonBuilder.from_settings(load_settings(path))
