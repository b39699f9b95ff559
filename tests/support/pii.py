"""Planted PII for the redaction tests, and challengers that echo or invent some."""

from __future__ import annotations

from typing import Any

# one value per detector kind, plus values only path rules can know about
EMAIL = "pii.jane.planted@example.org"
PHONE = "+44 20 7946 0958"
CHALLENGER_PHONE = "(415) 555-2671"  # a challenger's own answer carries it
CARD = "4111 1111 1111 1111"
IBAN = "GB82 WEST 1234 5698 7654 32"
IPV4 = "198.51.100.23"
IPV6 = "2001:db8::7334:1"
BEARER = "Bearer plantedBearerTok3n99"
API_KEY = "sk-plantedapikey-abcdefghijkl"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA"
NAME = "Janet Plantedname"
PASSWORD = "hunter2-planted-pw"
CUSTOMER_ID = "cust-778899-planted"
ADDRESS = "221B Planted Street"  # storage_only: reaches challengers, never stored

NEVER_ANYWHERE = [EMAIL, PHONE, CHALLENGER_PHONE, CARD, CARD.replace(" ", ""), IBAN,
                  IBAN.replace(" ", ""), IPV4, IPV6, BEARER, API_KEY, JWT, NAME, PASSWORD,
                  CUSTOMER_ID]  # fmt: skip

POLICY: dict[str, Any] = {
    "detectors": ["email", "phone", "card", "iban", "ip", "credential"],
    "rules": [
        {"path": "*customer_id", "action": "hash", "fields": ["payload", "attributes"]},
        {"path": "$.customer.id", "action": "hash"},
        {"path": "$.customer.name", "action": "mask", "keep_length": True},
        {"path": "*.password", "action": "drop"},
        {"path": "$.shipping.address", "action": "mask", "storage_only": True},
        {"path": "$.address", "action": "mask", "storage_only": True, "fields": ["output"]},
    ],
}


def payload(i: int) -> dict[str, Any]:
    return {
        "i": i,
        "customer": {"id": CUSTOMER_ID, "name": NAME, "email": EMAIL, "password": PASSWORD},
        "message": f"call {PHONE}, card {CARD}, iban {IBAN}, from {IPV4} / {IPV6}",
        "auth": BEARER,
        "shipping": {"address": ADDRESS},
    }


def champion_output(i: int) -> dict[str, Any]:
    return {"i": i, "answer": f"we wrote to {EMAIL}", "seen_from": IPV6, "key": API_KEY}


def tool_trace() -> list[dict[str, Any]]:
    return [{"name": "crm", "arguments": {"email": EMAIL}, "result": {"phone": PHONE, "jwt": JWT}}]


async def echo(data: dict[str, Any], context: Any) -> Any:
    """Answers like the champion, plus the storage-only address and a phone of its own."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    i = int(data["i"])
    output = {**champion_output(i), "answer": f"we wrote to {data['customer']['email']}"}
    output["address"] = data["shipping"]["address"]
    output["contact"] = CHALLENGER_PHONE
    return ModelAnswer(output, tool_trace=[{"name": "crm", "result": {"card": CARD}}])


def broken(data: dict[str, Any]) -> Any:
    """Fails with personal data in its error message."""
    raise ValueError(f"cannot ship to {data['shipping']['address']}; call {CHALLENGER_PHONE}")
