"""The SDK's PII redaction stage: detectors, path rules, stages, configuration, the emitter hook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shadowstream.core.errors import ConfigError
from shadowstream.producers import ShadowEmitter
from shadowstream.producers.redaction import PathRule, RedactionPolicy, Redactor
from shadowstream.producers.redaction.detectors import iban_valid, luhn_valid, phone_valid
from shadowstream.schemas import REQUEST, RESPONSE

KEY = b"k" * 32

# one planted value per detector kind, in free text
PLANTED = {
    "email": "jane.roe+shadow@example.org",
    "phone": "+44 20 7946 0958",
    "phone_us": "(415) 555-2671",
    "phone_de": "030 1234567",
    "card": "4111-1111-1111-1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "ipv4": "203.0.113.77",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "api_key": "sk-proj-abcdefghijklmnopqrstuvwx",
}
ALL_DETECTORS = ["email", "phone", "card", "iban", "ip", "credential"]


def scrub(text: str, detectors: list[str] = ALL_DETECTORS) -> str:
    redactor = Redactor(RedactionPolicy(detectors=detectors, hash_key=KEY))
    counts: dict[str, int] = {}
    return str(redactor.field(text, "error", counts))


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_each_detector_finds_its_kind_in_free_text(kind: str) -> None:
    value = PLANTED[kind]
    out = scrub(f"before {value} after")
    assert value not in out
    assert out.startswith("before [") and out.endswith("] after")


@pytest.mark.parametrize(
    "text",
    [
        "order 12345 shipped on 2026-11-29 at 10:00:00",
        "version 1.2.3, ratio 0.8312, timestamp 1795987217.710",
        "card-like 4111 1111 1111 1112 fails Luhn",
        "DE00 1234 5678 9012 3456 78 fails mod 97",
        "999.1.2.3 is no address",
        "no personal data here at all",
    ],
)
def test_detectors_leave_ordinary_text_alone(text: str) -> None:
    assert scrub(text) == text


def test_validators() -> None:
    assert luhn_valid("4111 1111 1111 1111") and not luhn_valid("4111 1111 1111 1112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid(
        "DE89 3704 0044 0532 0130 01"
    )
    assert phone_valid("+1 415 555 2671") and phone_valid("030 1234567")
    assert not phone_valid("2026-11-29") and not phone_valid("192.168.100.200")


def test_detectors_are_off_unless_named() -> None:
    assert scrub(f"mail {PLANTED['email']}", detectors=["phone"]) == f"mail {PLANTED['email']}"


def test_path_rules_drop_mask_hash_without_touching_the_callers_object() -> None:
    policy = RedactionPolicy(
        rules=[
            PathRule("$.customer.id", "hash"),
            PathRule("*.password", "drop"),
            PathRule("$.notes", "mask", keep_length=True),
            PathRule("$.items[*].ssn", "mask"),
        ],
        hash_key=KEY,
    )
    payload = {
        "customer": {"id": 42, "password": "p"},
        "notes": "secret!",
        "items": [{"ssn": "123-45-6789", "n": 1}, {"ssn": "987-65-4321"}],
        "keep": "this",
    }
    original = json.loads(json.dumps(payload))
    counts: dict[str, int] = {}
    out = Redactor(policy).field(payload, "payload", counts)
    assert payload == original  # the caller's object is never modified
    assert out["customer"] == {"id": out["customer"]["id"]}
    assert out["customer"]["id"].startswith("hmac:") and len(out["customer"]["id"]) == 29
    assert out["notes"] == "*******"
    assert [i["ssn"] for i in out["items"]] == ["[REDACTED]", "[REDACTED]"]
    assert out["keep"] == "this"
    assert counts == {
        "hash:$.customer.id": 1,
        "drop:*.password": 1,
        "mask:$.notes": 1,
        "mask:$.items[*].ssn": 2,
    }


def test_hash_is_keyed_deterministic_and_idempotent() -> None:
    def hashed(key: bytes, value: Any) -> Any:
        policy = RedactionPolicy(rules=[PathRule("$.id", "hash")], hash_key=key)
        return Redactor(policy).field({"id": value}, "payload", {})["id"]

    assert hashed(KEY, "cust-1") == hashed(KEY, "cust-1") != hashed(KEY, "cust-2")
    assert hashed(KEY, "cust-1") != hashed(b"other-key-of-32-bytes-----------", "cust-1")
    once = hashed(KEY, "cust-1")
    assert hashed(KEY, once) == once  # an already hashed value stays as it is
    # no detector matches a redaction token, so redacting twice changes nothing
    text = f"{PLANTED['email']} {PLANTED['card']} {once}"
    assert scrub(scrub(text)) == scrub(text)


def test_a_hash_rule_without_a_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHADOW_REDACTION_KEY", raising=False)
    with pytest.raises(ConfigError, match="SHADOW_REDACTION_KEY"):
        RedactionPolicy(rules=[PathRule("$.id", "hash")])
    monkeypatch.setenv("SHADOW_REDACTION_KEY", "x" * 16)
    RedactionPolicy(rules=[PathRule("$.id", "hash")])


def test_stages_split_storage_only_rules() -> None:
    policy = RedactionPolicy(
        rules=[PathRule("$.name", "mask"), PathRule("$.address", "mask", storage_only=True)],
        detectors=["email"],
    )
    event = {"name": "Jane", "address": "1 Main St", "mail": "a@b.io"}
    sdk = Redactor(policy, "sdk").field(event, "payload", {})
    storage = Redactor(policy, "storage").field(sdk, "payload", {})
    assert sdk == {"name": "[REDACTED]", "address": "1 Main St", "mail": "[EMAIL]"}
    assert storage["address"] == "[REDACTED]"
    assert not Redactor(RedactionPolicy(rules=[PathRule("$.x")]), "storage").active


def test_json_text_fields_keys_numbers_and_fields_scope() -> None:
    policy = RedactionPolicy(
        rules=[PathRule("$.token", "drop", fields=("attributes",))],
        detectors=["email", "card"],
    )
    redactor = Redactor(policy)
    record: dict[str, Any] = {
        "payload": json.dumps({"jane@example.org": {"card": 4111111111111111}, "token": "t"}),
        "attributes": {"token": "t", "lang": "de"},
        "endpoint": "/users/jane@example.org",
    }
    counts: dict[str, int] = {}
    redactor.request(record, counts)
    assert json.loads(record["payload"]) == {"[EMAIL]": {"card": "[CARD]"}, "token": "t"}
    assert record["attributes"] == {"lang": "de"}
    assert record["endpoint"] == "/users/[EMAIL]"
    assert counts == {"detector:email": 2, "detector:card": 1, "drop:$.token": 1}


def test_user_hook_runs_on_every_string_and_is_counted() -> None:
    def no_names(text: str) -> str:
        return text.replace("Jane", "<NAME>")

    redactor = Redactor(RedactionPolicy(hooks=[no_names]))
    counts: dict[str, int] = {}
    out = redactor.field({"a": ["Jane Roe", "x"], "Jane": 1}, "output", counts)
    assert out == {"a": ["<NAME> Roe", "x"], "<NAME>": 1}
    assert counts == {
        "hook:test_user_hook_runs_on_every_string_and_is_counted.<locals>.no_names": 2
    }


def test_config_table_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "y" * 20)
    config = tmp_path / "shadow.toml"
    config.write_text(
        """
[redaction]
detectors = ["email", {name = "card", action = "hash"}]
hooks = ["tests.unit.test_redaction:upper_hook"]
hash_key_env = "MY_KEY"

[[redaction.rules]]
path = "customer.id"
action = "hash"
fields = ["payload", "attributes"]
name = "customer-id"
"""
    )
    policy = RedactionPolicy.from_toml(config)
    assert [r.name for r in policy.rules] == ["customer-id"]
    assert policy.key() == b"y" * 20
    out = Redactor(policy).field(
        {"customer": {"id": 7}, "t": f"pay {PLANTED['card']}"}, "payload", {}
    )
    assert out["customer"]["id"].startswith("hmac:")
    assert out["t"].startswith("PAY [CARD:") and PLANTED["card"] not in out["t"]


def upper_hook(text: str) -> str:
    return text.upper() if text.startswith("pay") else text


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"rules": [{"path": "$.a", "action": "shred"}]}, "action must be one of"),
        ({"rules": [{"path": "$.a", "fields": ["body"]}]}, "fields must be among"),
        ({"rules": [{"action": "drop"}]}, "every rule is a table with a path"),
        ({"detectors": ["ssn"]}, "unknown PII detector 'ssn'"),
        ({"hooks": ["nowhere.module:fn"]}, "cannot be imported"),
        ({"rulez": []}, "unknown keys rulez"),
    ],
)
def test_invalid_configuration_is_one_clear_error(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RedactionPolicy.from_mapping(table)


class Capture(ShadowEmitter):
    """A real emitter whose sent bytes are kept (the broker is not needed to see them)."""

    sent: list[bytes]

    def _send(self, topic: str, key: str, value: bytes) -> bool:
        self.sent.append(value)
        return True


def test_the_emitter_redacts_before_encoding_and_counts_per_rule() -> None:
    emitter = Capture(
        "kafka://127.0.0.1:1",
        service="svc",
        redaction={
            "rules": [{"path": "$.customer.email", "action": "drop"}],
            "detectors": ALL_DETECTORS,
        },
    )
    emitter.sent = []
    try:
        payload = {"customer": {"email": PLANTED["email"]}, "text": f"call {PLANTED['phone']}"}
        emitter.emit_request("r1", "/v1", payload, attributes={"ip": PLANTED["ipv4"]})
        emitter.emit_response(
            "r1",
            {"answer": f"card {PLANTED['card']}"},
            3.0,
            status="error",
            error=f"ValueError: no IBAN {PLANTED['iban']} for {PLANTED['api_key']}",
            tool_trace=[{"name": "lookup", "result": PLANTED["ipv6"]}],
        )
        blob = b"".join(emitter.sent)
        for value in PLANTED.values():
            assert value.encode() not in blob
        request = REQUEST.decode(emitter.sent[0])
        response = RESPONSE.decode(emitter.sent[1])
        assert json.loads(request["payload"]) == {"customer": {}, "text": "call [PHONE]"}
        assert request["attributes"] == {"ip": "[IP]"}
        # credentials in error text are masked first by the secrets pass (core.secrets)
        assert response["error"] == "ValueError: no IBAN [IBAN] for ***"
        stats = emitter.stats()
        assert stats.redacted == {
            "drop:$.customer.email": 1,
            "detector:phone": 1,
            "detector:ipv4": 1,
            "detector:card": 1,
            "detector:iban": 1,
            "detector:ipv6": 1,
        }
        assert payload["customer"] == {"email": PLANTED["email"]}  # caller's data untouched
    finally:
        emitter.close(0.1)


def test_a_failing_hook_drops_the_event_never_sends_it_raw() -> None:
    def broken(text: str) -> str:
        raise RuntimeError("PII service down")

    emitter = Capture(
        "kafka://127.0.0.1:1", service="svc", redaction=RedactionPolicy(hooks=[broken])
    )
    emitter.sent = []
    try:
        assert emitter.emit_request("r1", "/v1", {"name": "Jane"}) is False
        assert emitter.sent == []
        assert emitter.stats().dropped_redaction == 1
    finally:
        emitter.close(0.1)


def test_no_policy_means_no_redaction_stage() -> None:
    emitter = ShadowEmitter("kafka://127.0.0.1:1", service="svc")
    try:
        assert emitter._redactor is None
    finally:
        emitter.close(0.1)
