"""Built-in PII detectors for free text: a regular expression, then a check of each match.

Off by default, enabled by name (see ``DETECTORS`` and ``ALIASES``):

* ``email``: addresses (``local@domain.tld``);
* ``phone``: international (``+49 30 1234567``) and formatted national numbers
  (``(555) 123-4567``, ``555-123-4567``, ``030 1234567``): 9-15 digits with
  separators, or a leading ``+``; dates, decimals and bare digit runs are not
  phone numbers;
* ``card``: payment card numbers, 13-19 digits (spaces or dashes allowed) that
  pass the Luhn check;
* ``iban``: IBANs whose ISO 13616 mod-97 check passes;
* ``ip``: IPv4 and IPv6 addresses (``ipv4`` / ``ipv6`` alone), checked by
  :mod:`ipaddress`;
* ``credential``: ``Bearer``/``Basic`` credentials, JSON Web Tokens and API
  keys (``sk-...``, ``AKIA...``, ``ghp_...``, ``xox?-...``, ``key=...``).

A detector's replacement never contains digits, ``@``, ``:`` runs or dots, so
no detector matches another's output and redacting twice changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

Check = Callable[[str], bool]


def luhn_valid(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def phone_valid(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    if text.startswith("+"):
        return 8 <= digits <= 15
    if not 9 <= digits <= 15:
        return False
    if "(" in text:
        return True
    groups = [g for g in re.split(r"[\s.\-]+", text) if g]
    if len(groups) >= 3:
        # an IPv4 address or a dotted number is not a phone number
        return not re.fullmatch(r"[\d.]+", text)
    return len(groups) == 2 and groups[0].startswith("0") and "." not in text


def ipv4_valid(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def ipv6_valid(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def always(text: str) -> bool:
    return True


@dataclass(frozen=True)
class Detector:
    """One kind of PII in free text."""

    name: str
    pattern: str  # a regular expression without capturing groups
    check: Check = always
    label: str = ""  # the replacement's tag, e.g. EMAIL
    # a cheap test first: text without this can hold no match ("digit", "@", ":", or "")
    needs: str = ""

    @property
    def tag(self) -> str:
        return self.label or self.name.upper()


_B = r"(?<![A-Za-z0-9_])"  # not inside a word or number
_E = r"(?![A-Za-z0-9_])"

DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector(
            "credential",
            r"\b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{8,}"
            r"|\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"
            r"|\bsk-[A-Za-z0-9_\-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}"
            r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
            r"|(?i:\b(?:api[_-]?key|access[_-]?token|secret|password)\s*[=:]\s*)[^\s,;&\"']{6,}",
            label="CREDENTIAL",
        ),
        Detector(
            "email",
            r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
            r"\.[A-Za-z]{2,}(?![A-Za-z0-9\-])",
            needs="@",
        ),
        Detector(
            "iban",
            _B + r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?" + _E,
            iban_valid,
            needs="digit",
        ),
        Detector("card", _B + r"\d(?:[ \-]?\d){12,18}" + _E, luhn_valid, needs="digit"),
        Detector(
            "ipv6",
            r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:|"
            r"\d{1,3}(?:\.\d{1,3}){3})?(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:])",
            ipv6_valid,
            label="IP",
            needs=":",
        ),
        Detector(
            "ipv4",
            r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])",
            ipv4_valid,
            label="IP",
            needs="digit",
        ),
        Detector(
            "phone",
            # at least 8 digits ahead (a cheap lookahead: most numbers fail here)
            r"(?<![\w+])(?=(?:[\s.\-()+]{0,2}\d){8})"
            r"(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,5}\)[\s.\-]?)?\d{1,5}"
            r"(?:[\s.\-]\d{1,8}){0,5}(?![\w])",
            phone_valid,
            needs="digit",
        ),
    )
}

# names a user may write, and the detectors each enables
ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "emails": ("email",),
    "phone": ("phone",),
    "phone_number": ("phone",),
    "card": ("card",),
    "credit_card": ("card",),
    "payment_card": ("card",),
    "iban": ("iban",),
    "ip": ("ipv4", "ipv6"),
    "ipv4": ("ipv4",),
    "ipv6": ("ipv6",),
    "credential": ("credential",),
    "secret": ("credential",),
    "token": ("credential",),
    "api_key": ("credential",),
    "jwt": ("credential",),
}

# when two detectors could match at the same place, the first in this order wins
ORDER = ("credential", "email", "iban", "card", "ipv6", "ipv4", "phone")


def resolve(name: str) -> tuple[Detector, ...]:
    """The detectors a configured name enables; KeyError for an unknown name."""
    return tuple(DETECTORS[n] for n in ALIASES[name.strip().lower()])
