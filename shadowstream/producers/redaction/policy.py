"""What to redact: path rules, detectors, user hooks, and the hash key. Built in code or from TOML.

In code::

    from shadowstream.producers.redaction import PathRule, RedactionPolicy

    policy = RedactionPolicy(
        rules=[PathRule("$.customer.email", "hash"), PathRule("*.password", "drop")],
        detectors=["email", "phone", "card"],
        hooks=[my_presidio_scrubber],          # str -> str, called on every string
    )

In the config file (``[redaction]`` of ``shadow.toml``)::

    [redaction]
    detectors = ["email", "phone", {name = "card", action = "hash"}]
    hooks = ["my_pii:scrub"]
    hash_key_env = "SHADOW_REDACTION_KEY"

    [[redaction.rules]]
    path = "$.customer.id"
    action = "hash"                 # drop | mask | hash
    fields = ["payload", "attributes"]

The HMAC key of ``hash`` actions comes from the environment (``hash_key_env``,
default ``SHADOW_REDACTION_KEY``), never from the file: the same key in every
service and agent makes a hashed value the same everywhere, so it can still
slice a report or join a replay.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.core.secrets import register_secret
from shadowstream.producers.redaction.detectors import ALIASES, Detector, resolve
from shadowstream.producers.redaction.paths import glob_regex

ACTIONS = ("drop", "mask", "hash")
FIELDS = ("payload", "output", "attributes", "tool_trace", "error")
DEFAULT_KEY_ENV = "SHADOW_REDACTION_KEY"
DEFAULT_TOKEN = "[REDACTED]"
MIN_KEY_BYTES = 16

Hook = Callable[[str], str]


@dataclass(frozen=True)
class PathRule:
    """Redact the value at every path the glob matches.

    ``action``: ``drop`` removes it (the key, or the list item); ``mask``
    replaces it with ``token`` (or, with ``keep_length``, as many ``*`` as it
    has characters); ``hash`` replaces it with ``hmac:<24 letters>``, the same
    for the same value and key everywhere. ``fields``: where the rule applies
    (default: payload, output, attributes, tool_trace; the error text is free
    text, ``$`` addresses all of it). ``storage_only``: the value still reaches
    the challengers; the router and the sink redact it before anything is
    compared or stored.
    """

    path: str
    action: str = "mask"
    fields: tuple[str, ...] = FIELDS[:4]
    keep_length: bool = False
    token: str = DEFAULT_TOKEN
    storage_only: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"redaction rule {self.path!r}: action must be one of {ACTIONS}")
        unknown = set(self.fields) - set(FIELDS)
        if unknown or not self.fields:
            raise ConfigError(
                f"redaction rule {self.path!r}: fields must be among {', '.join(FIELDS)}"
            )
        glob_regex(self.path)  # ConfigError when malformed
        if not self.name:
            object.__setattr__(self, "name", f"{self.action}:{self.path}")


@dataclass(frozen=True)
class DetectorRule:
    """Built-in detectors enabled by name, and what to do with what they find."""

    name: str
    action: str = "mask"  # mask -> "[EMAIL]"; hash -> "[EMAIL:<24 letters>]"
    storage_only: bool = False

    def __post_init__(self) -> None:
        if self.name.strip().lower() not in ALIASES:
            raise ConfigError(
                f"unknown PII detector {self.name!r} (known: {', '.join(sorted(ALIASES))})"
            )
        if self.action not in ("mask", "hash"):
            raise ConfigError(f"detector {self.name!r}: action must be mask or hash")

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return resolve(self.name)


@dataclass(frozen=True)
class RedactionPolicy:
    """Everything the redaction stage does. An empty policy redacts nothing (and costs nothing)."""

    rules: Sequence[PathRule] = ()
    detectors: Sequence[DetectorRule | str] = ()
    hooks: Sequence[Hook] = ()
    hash_key: bytes | None = None
    hash_key_env: str = DEFAULT_KEY_ENV
    scan_keys: bool = True  # run the detectors on object keys too
    detector_rules: tuple[DetectorRule, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        rules = tuple(self.detectors)
        parsed = tuple(r if isinstance(r, DetectorRule) else DetectorRule(r) for r in rules)
        object.__setattr__(self, "detector_rules", parsed)
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "hooks", tuple(self.hooks))
        if self.needs_key and self.key() is None:
            raise ConfigError(
                f"redaction: a hash action needs a key of at least {MIN_KEY_BYTES} bytes in "
                f"${self.hash_key_env} (or hash_key= in code)"
            )

    @property
    def empty(self) -> bool:
        return not (self.rules or self.detector_rules or self.hooks)

    @property
    def needs_key(self) -> bool:
        return any(r.action == "hash" for r in self.rules) or any(
            d.action == "hash" for d in self.detector_rules
        )

    @property
    def has_storage_only(self) -> bool:
        return any(r.storage_only for r in self.rules) or any(
            d.storage_only for d in self.detector_rules
        )

    def key(self) -> bytes | None:
        if self.hash_key is not None:
            return self.hash_key if len(self.hash_key) >= MIN_KEY_BYTES else None
        value = os.environ.get(self.hash_key_env, "")
        if len(value.encode()) < MIN_KEY_BYTES:
            return None
        register_secret(value)  # the key is a secret like any other: never printed
        return value.encode()

    # -- from configuration ----------------------------------------------------------------
    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> RedactionPolicy:
        """A policy from the ``[redaction]`` table of a config file (ConfigError if invalid)."""
        known = {"rules", "detectors", "hooks", "hash_key_env", "scan_keys", "enabled"}
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"redaction: unknown keys {', '.join(sorted(unknown))}")
        if table.get("enabled", True) is False:
            return cls()
        return cls(
            rules=[_rule(r) for r in _list(table, "rules")],
            detectors=[_detector(d) for d in _list(table, "detectors")],
            hooks=[_hook(h) for h in _list(table, "hooks")],
            hash_key_env=str(table.get("hash_key_env", DEFAULT_KEY_ENV)),
            scan_keys=bool(table.get("scan_keys", True)),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> RedactionPolicy:
        """The ``[redaction]`` table of a TOML config file (an empty policy without one)."""
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the redaction config {path}: {exc}") from None
        table = data.get("redaction", {})
        if not isinstance(table, Mapping):
            raise ConfigError("redaction: must be a table")
        return cls.from_mapping(table)

    @classmethod
    def coerce(
        cls, value: RedactionPolicy | Mapping[str, Any] | str | Path | None
    ) -> RedactionPolicy:
        """A policy from whatever a caller passes: a policy, a table, a TOML path, or None."""
        if value is None:
            return cls()
        if isinstance(value, RedactionPolicy):
            return value
        if isinstance(value, str | Path):
            return cls.from_toml(value)
        return cls.from_mapping(value)


def _list(table: Mapping[str, Any], key: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"redaction.{key} must be a list")
    return value


def _rule(raw: Any) -> PathRule:
    if not isinstance(raw, Mapping) or "path" not in raw:
        raise ConfigError("redaction.rules: every rule is a table with a path")
    allowed = {"path", "action", "fields", "keep_length", "token", "storage_only", "name"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"redaction rule {raw['path']!r}: unknown keys {sorted(unknown)}")
    values = dict(raw)
    if "fields" in values:
        values["fields"] = tuple(values["fields"])
    return PathRule(**values)


def _detector(raw: Any) -> DetectorRule:
    if isinstance(raw, str):
        return DetectorRule(raw)
    if isinstance(raw, Mapping) and "name" in raw:
        unknown = set(raw) - {"name", "action", "storage_only"}
        if unknown:
            raise ConfigError(f"detector {raw['name']!r}: unknown keys {sorted(unknown)}")
        return DetectorRule(**dict(raw))
    raise ConfigError("redaction.detectors: a name, or a table with a name")


def _hook(raw: Any) -> Hook:
    if callable(raw):
        return raw  # type: ignore[no-any-return]
    text = str(raw)
    module, _, attr = text.partition(":")
    if not module or not attr:
        raise ConfigError(f"redaction hook {text!r}: expected module:function")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"redaction hook {text!r} cannot be imported: {exc}") from None
    if not callable(target):
        raise ConfigError(f"redaction hook {text!r} is not callable")
    return target  # type: ignore[no-any-return]
