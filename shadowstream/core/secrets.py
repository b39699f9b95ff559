"""One redaction function for secrets: URLs, credential-looking values, known secret values.

Everything that prints, logs, exports or stores text that may carry a
credential goes through :func:`redact_text` (free text: error messages, log
lines, stored error columns), :func:`redact_url` (one URL) or
:func:`redact_mapping` (configuration dumps, ``/metrics``):

* the password of a URL's userinfo (``http://alice:SECRET@host`` ->
  ``http://alice:***@host``);
* ``Authorization`` / ``Proxy-Authorization`` values and any ``Basic`` or
  ``Bearer`` credential;
* values of keys that name a secret: ``*password*``, ``*secret*``,
  ``*token*``, ``*api_key*`` / ``*apikey*``, ``*credential*``, ``sasl.*``,
  ``ssl.key*`` (as ``key=value``, ``key: value`` or JSON ``"key": "value"``);
* JSON Web Tokens and the common API key shapes (``sk-...``, ``AKIA...``,
  ``ghp_...``, ``xox?-...``);
* every value registered with :func:`register_secret` (the configured
  passwords, SASL secrets, header values read from the environment), in
  whatever text it turns up, with the Basic form of URL credentials too.

Standard library only: the producer SDK uses it as well.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# shorter values are too likely to be ordinary words or numbers to be replaced blindly
MIN_REGISTERED_LENGTH = 4

_SECRET_KEY = re.compile(
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credential|private[_-]?key"
    r"|authorization|^sasl\.|^ssl\.key|cookie)",
    re.IGNORECASE,
)
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/?#@\s'\"]*):(?P<pw>[^@/\s'\"]*)@"
)
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>Basic|Bearer|Token|Digest|Negotiate)\s+(?P<cred>[A-Za-z0-9._~+/=\-]{6,})",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    r"(?P<key>[\"']?[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey"
    r"|credential|private[_-]?key|authorization|sasl\.[a-z.]+|ssl\.key[a-z.]*)[\"']?)"
    r"(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]\)]+)",
    re.IGNORECASE,
)
_TOKENS = re.compile(
    r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"  # JWT
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI / Anthropic style keys
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack tokens
)


class _Registry:
    """Known secret values, matched literally in any text (one compiled alternation)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_REGISTERED_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            ordered = sorted(self._values, key=len, reverse=True)  # longest first
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def sub(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None


_registry = _Registry()


def register_secret(value: str | None) -> None:
    """Never print this value (nor its URL-decoded form) anywhere, in any text."""
    if not value:
        return
    _registry.add(value)
    decoded = unquote(value)
    if decoded != value:
        _registry.add(decoded)


def register_url_secrets(url: str | None) -> None:
    """Register the password of a URL's userinfo, and the Basic credential it makes."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        register_secret(password)
        user = unquote(parts.username or "")
        basic = base64.b64encode(f"{user}:{unquote(password)}".encode()).decode()
        register_secret(basic)


def forget_registered_secrets() -> None:
    """For tests: start from an empty registry."""
    _registry.clear()


def is_secret_key(key: str) -> bool:
    """Does a configuration key or header name hold a secret (password, token, sasl.*, ...)?"""
    return bool(_SECRET_KEY.search(key))


def redact_url(url: str) -> str:
    """The URL with the password of its userinfo replaced (and known secrets masked)."""
    return _registry.sub(_USERINFO.sub(_mask_userinfo, url))


def _mask_userinfo(match: re.Match[str]) -> str:
    return f"{match.group('scheme')}{match.group('user')}:{MASK}@"


def _mask_key_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith(("'", '"')):
        return f"{match.group('key')}{match.group('sep')}{value[0]}{MASK}{value[0]}"
    if value in (MASK, "null", "None", "true", "false"):
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{MASK}"


def redact_text(text: str) -> str:
    """Free text (an error, a log line, a stored error column) with every credential masked."""
    if not text:
        return text
    out = _USERINFO.sub(_mask_userinfo, text)
    out = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {MASK}", out)
    out = _KEY_VALUE.sub(_mask_key_value, out)
    out = _TOKENS.sub(MASK, out)
    return _registry.sub(out)


def redact_value(value: Any) -> Any:
    """Strings redacted as text; lists and mappings walked (secret-named keys masked)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redact_strings(value: Any) -> Any:
    """Every string in a structure redacted as text; keys left alone (``/metrics``)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_strings(v) for v in value]
    return value


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` where secret-named keys are masked and every string is redacted."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key)
        if is_secret_key(name) and value not in (None, "", {}, []):
            out[name] = {k: MASK for k in value} if isinstance(value, Mapping) and value else MASK
        else:
            out[name] = redact_value(value)
    return out


# masked when shown under a secret-looking key, but not secret enough to be hunted down in
# every text (a user name, a mechanism, a file's location)
_NAMES_NOT_VALUES = re.compile(
    r"(?:username|user|mechanisms?|protocol|service\.name|location|algorithm)$"
)


def register_mapping_secrets(data: Mapping[str, Any]) -> None:
    """Register every string value held under a secret-named key (recursively)."""
    for key, value in data.items():
        name = str(key)
        if isinstance(value, Mapping):
            if is_secret_key(name):
                for inner in value.values():
                    if isinstance(inner, str):
                        register_secret(inner)
            register_mapping_secrets(value)
        elif isinstance(value, str) and is_secret_key(name) and not _NAMES_NOT_VALUES.search(name):
            register_secret(value)


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter: the whole formatted record (traceback included) is redacted."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self.inner.format(record))


def install_log_redaction(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Redact every line the given handlers (default: the root logger's) write."""
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        formatter = handler.formatter
        if not isinstance(formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(formatter))


def strip_userinfo(url: str) -> str:
    """The URL without any userinfo at all (for places that must not even show the user)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
