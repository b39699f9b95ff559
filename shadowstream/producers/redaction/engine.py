"""The redaction stage: applies a :class:`RedactionPolicy` to request and response events.

One walk per field: at each node the path rules are checked first (a matched
value is dropped, masked or hashed as a whole); otherwise strings go through
the enabled detectors and hooks, and containers are walked. Nothing the
caller passed is modified: containers are copied only where something
changed. Counts of what was redacted, per rule, go into the ``counts`` dict
each call is given.

Stages: ``sdk`` (in the service) applies every rule except the
``storage_only`` ones, plus the hooks; ``storage`` (router and sink) applies
only the ``storage_only`` ones; ``all`` applies everything.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable
from typing import Any, Final, Literal

from shadowstream.producers.redaction.detectors import ORDER, Detector
from shadowstream.producers.redaction.paths import RuleMatcher, key_segment
from shadowstream.producers.redaction.policy import DetectorRule, PathRule, RedactionPolicy
from shadowstream.schemas.records import RequestEvent, ResponseEvent

Counts = dict[str, int]
STAGES = ("sdk", "storage", "all")
MIN_SCRUB_LENGTH = 4  # shorter values are too likely to be ordinary words to scrub by value


class Tally(dict[str, int]):
    """Counts per rule that also keep the original values the path rules redacted."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()


class _Drop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()
HASHED = re.compile(r"hmac:[a-p]{24}")
_DIGIT = re.compile(r"\d")
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_SEGMENTS: dict[str, str] = {}


def _segment(key: str) -> str:
    segment = _SEGMENTS.get(key)
    if segment is None:
        segment = key_segment(key)
        if len(_SEGMENTS) > 65_536:
            _SEGMENTS.clear()
        _SEGMENTS[key] = segment
    return segment


def _canonical(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class Redactor:
    """Applies one stage of a policy; ``active`` is False when that stage has nothing to do."""

    def __init__(
        self,
        policy: RedactionPolicy,
        stage: str = "sdk",
        to_jsonable: Callable[[Any], Any] | None = None,
    ) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")

        def wanted(storage_only: bool) -> bool:
            return stage == "all" or storage_only == (stage == "storage")

        self.policy = policy
        self.rules: list[PathRule] = [r for r in policy.rules if wanted(r.storage_only)]
        detector_rules = [d for d in policy.detector_rules if wanted(d.storage_only)]
        self.hooks = list(policy.hooks) if stage != "storage" else []
        self.scan_keys = policy.scan_keys
        self._key = policy.key() if policy.needs_key else None
        self._to_jsonable = to_jsonable or (lambda v: json.loads(_canonical(v)))
        # per field: the rules that apply there, and a matcher over their globs
        self._field_rules: dict[str, tuple[list[PathRule], RuleMatcher]] = {}
        for name in ("payload", "output", "attributes", "tool_trace", "error"):
            rules = [r for r in self.rules if name in r.fields]
            self._field_rules[name] = (rules, RuleMatcher([r.path for r in rules]))
        self._detectors: list[tuple[Detector, DetectorRule]] = []
        for rule in detector_rules:
            for detector in rule.detectors:
                if all(d.name != detector.name for d, _ in self._detectors):
                    self._detectors.append((detector, rule))
        self._detectors.sort(key=lambda pair: ORDER.index(pair[0].name))
        # one pass per detector, in ORDER (faster than one alternation: each pattern keeps
        # its own literal prefix optimisations), each behind a cheap test of the text
        self._scans = [(re.compile(d.pattern), d, rule, d.needs) for d, rule in self._detectors]
        self._scan = bool(self._scans)
        self._keys: dict[str, str] = {}  # object keys repeat: scanned once each
        self.active = bool(self.rules or self._detectors or self.hooks)

    # -- events --------------------------------------------------------------------------------
    def request(self, record: RequestEvent, counts: Counts) -> None:
        """Redact a RequestEvent dict in place (payload, attributes, endpoint)."""
        record["payload"] = self.field(record.get("payload"), "payload", counts, json_text=True)
        attributes = record.get("attributes")
        if attributes:
            redacted = self.field(attributes, "attributes", counts)
            if redacted is not attributes:
                record["attributes"] = {
                    str(k): v if isinstance(v, str) else _canonical(v)
                    for k, v in (redacted or {}).items()
                }
        endpoint = record.get("endpoint")
        if isinstance(endpoint, str) and self._scan:
            record["endpoint"] = self._text(endpoint, counts)

    def response(self, record: ResponseEvent, counts: Counts) -> None:
        """Redact a ResponseEvent dict in place (output, tool trace, error text)."""
        record["output"] = self.field(record.get("output"), "output", counts, json_text=True)
        record["tool_trace"] = self.field(
            record.get("tool_trace"), "tool_trace", counts, json_text=True
        )
        error = record.get("error")
        if error is not None:
            record["error"] = self.field(str(error), "error", counts)

    # -- one field -------------------------------------------------------------------------------
    def field(self, value: Any, name: str, counts: Counts, json_text: bool = False) -> Any:
        """The redacted value of one field; a string is parsed as JSON first if ``json_text``."""
        if value is None:
            return None
        rules, matcher = self._field_rules[name]
        if json_text and isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value  # plain text: detectors and "$" rules only
            else:
                result = self._walk(parsed, "$", rules, matcher, counts)
                if result is parsed:
                    return value
                return None if result is DROP else json.dumps(result, ensure_ascii=False)
        result = self._walk(value, "$", rules, matcher, counts)
        return None if result is DROP else result

    def _walk(
        self, value: Any, path: str, rules: list[PathRule], matcher: RuleMatcher, counts: Counts
    ) -> Any:
        if matcher:
            index = matcher(path)
            if index >= 0:
                return self._apply(rules[index], value, counts)
        kind = type(value)
        if kind is str:
            return self._text(value, counts)
        if kind is dict:
            return self._dict(value, path, rules, matcher, counts)
        if kind is list or kind is tuple:
            return self._list(value, path, rules, matcher, counts)
        if kind is int:
            if not self._scan:
                return value
            text = str(value)
            redacted = self._text(text, counts)
            return value if redacted is text else redacted
        if value is None or kind is float or kind is bool:
            return value
        return self._walk(self._to_jsonable(value), path, rules, matcher, counts)

    def _dict(
        self,
        value: dict[Any, Any],
        path: str,
        rules: list[PathRule],
        matcher: RuleMatcher,
        counts: Counts,
    ) -> Any:
        out: dict[Any, Any] | None = None
        scan_keys = self.scan_keys and (self._scan or bool(self.hooks))
        for index, (key, item) in enumerate(value.items()):
            name = key if type(key) is str else str(key)
            new_key = self._object_key(name, counts) if scan_keys else key
            new_item = self._walk(item, path + _segment(name), rules, matcher, counts)
            if out is None:
                if new_key is key and new_item is item:
                    continue
                out = dict(itertools.islice(value.items(), index))
            if new_item is not DROP:
                out[new_key] = new_item
        return value if out is None else out

    def _list(
        self, value: Any, path: str, rules: list[PathRule], matcher: RuleMatcher, counts: Counts
    ) -> Any:
        out: list[Any] | None = None
        for index, item in enumerate(value):
            new_item = self._walk(item, f"{path}[{index}]", rules, matcher, counts)
            if out is None:
                if new_item is item:
                    continue
                out = list(value[:index])
            if new_item is not DROP:
                out.append(new_item)
        if out is None:
            return value if type(value) is list else list(value)
        return out

    # -- actions ------------------------------------------------------------------------------------
    def _apply(self, rule: PathRule, value: Any, counts: Counts) -> Any:
        seen = getattr(counts, "seen", None)
        if seen is not None:
            seen.update(v for v in _leaves(value) if len(v) >= MIN_SCRUB_LENGTH)
        if rule.action == "drop":
            counts[rule.name] = counts.get(rule.name, 0) + 1
            return DROP
        if rule.action == "mask":
            if rule.keep_length:
                text = _canonical(value)
                if text and text.strip("*") == "":
                    return value  # masked already
                masked: Any = "*" * len(text)
            else:
                if value == rule.token:
                    return value
                masked = rule.token
        else:
            if isinstance(value, str) and HASHED.fullmatch(value):
                return value  # hashed already (by the service, or an earlier stage)
            masked = "hmac:" + self._digest(_canonical(value))
        counts[rule.name] = counts.get(rule.name, 0) + 1
        return masked

    def _digest(self, text: str) -> str:
        assert self._key is not None
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
        return digest[:24].translate(_LETTERS)

    def _object_key(self, key: str, counts: Counts) -> str:
        cached = self._keys.get(key)
        if cached is not None:
            if cached is not key:
                self._text(key, counts)  # counted each time it is redacted
            return cached
        redacted = self._text(key, counts)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[key] = redacted
        return redacted

    def _text(self, text: str, counts: Counts) -> str:
        out = text
        if self._scan and len(text) >= 5:
            digits = _DIGIT.search(text) is not None
            for pattern, detector, rule, needs in self._scans:
                if needs == "digit":
                    if not digits:
                        continue
                elif needs and needs not in out:
                    continue
                out = pattern.sub(functools.partial(self._replace, detector, rule, counts), out)
        for hook in self.hooks:
            new = hook(out)
            if new != out:
                name = f"hook:{getattr(hook, '__qualname__', type(hook).__name__)}"
                counts[name] = counts.get(name, 0) + 1
                out = new
        return text if out == text else out

    def _replace(
        self, detector: Detector, rule: DetectorRule, counts: Counts, match: re.Match[str]
    ) -> str:
        found = match.group(0)
        if not detector.check(found):
            return found
        name = f"detector:{detector.name}"
        counts[name] = counts.get(name, 0) + 1
        if rule.action == "hash":
            return f"[{detector.tag}:{self._digest(found)}]"
        return f"[{detector.tag}]"


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


def scrub_values(value: Any, values: set[str], token: str = "[REDACTED]") -> Any:
    """``value`` with every occurrence of the given strings replaced, at any depth.

    For free text that repeats a value a path rule redacted elsewhere (a
    challenger quoting a storage_only field in its error message).
    """
    if not values:
        return value
    if isinstance(value, str):
        out = value
        for secret in sorted(values, key=len, reverse=True):
            if secret in out:
                out = out.replace(secret, token)
        return out
    if isinstance(value, dict):
        return {
            scrub_values(k, values, token): scrub_values(v, values, token) for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_values(v, values, token) for v in value]
    return value


# a challenger's answer: its JSON text fields, and the error text
ANSWER_TEXT_FIELDS: tuple[Literal["output", "tool_trace", "error"], ...] = (
    "output",
    "tool_trace",
    "error",
)


def scrub_answer(storage: Redactor, request: RequestEvent, record: ResponseEvent) -> bool:
    """In a challenger's ResponseEvent (JSON text fields), replace every value the
    storage_only rules take from its request. True if anything was replaced."""
    tally = Tally()
    storage.request(request.copy(), tally)
    if not tally.seen:
        return False
    changed = False
    for field in ANSWER_TEXT_FIELDS:
        text = record.get(field)
        if text is None:
            continue
        parsed = text
        if field != "error":
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        scrubbed = scrub_values(parsed, tally.seen)
        if scrubbed != parsed:
            changed = True
            record[field] = scrubbed if parsed is text else json.dumps(scrubbed, ensure_ascii=False)
    return changed


def build_redactor(policy: RedactionPolicy | dict[str, Any] | None, stage: str) -> Redactor | None:
    """The redactor of one stage of a policy (or its ``[redaction]`` table); None if idle."""
    if not policy:
        return None
    resolved = (
        policy if isinstance(policy, RedactionPolicy) else RedactionPolicy.from_mapping(policy)
    )
    redactor = Redactor(resolved, stage)
    return redactor if redactor.active else None
