"""Payloads and outputs as their JSON form, without importing any framework.

* pydantic models (v2 ``model_dump(mode="json")``, v1 ``dict()``), dataclasses,
  attrs classes, enums, datetimes, UUIDs, decimals, sets and numpy-like arrays
  become JSON values (found by duck typing: none of those libraries is
  imported here);
* framework objects - requests, responses, background tasks, DB sessions,
  connections, clients, files, callables - are left out of a call's payload,
  and become ``null`` when nested inside a value;
* any other object is its ``str()`` if its class defines one, else a stable
  ``"<module.Class>"`` placeholder (never a repr with a memory address, which
  would differ on every call and make every comparison diverge).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import inspect
import io
import json
import logging
import threading
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)


class JSONText(str):
    """Text that already is JSON (a request or response body): recorded as it is."""

    __slots__ = ()


# Modules whose objects are plumbing, not data: web frameworks, ORMs and DB
# drivers, HTTP clients, caches. Matched against every class in the object's MRO.
FRAMEWORK_MODULES = (
    "starlette.",
    "fastapi.",
    "django.",
    "flask.",
    "werkzeug.",
    "quart.",
    "aiohttp.",
    "sanic.",
    "litestar.",
    "tornado.",
    "falcon.",
    "sqlalchemy.",
    "asyncpg.",
    "psycopg",
    "pymysql.",
    "aiomysql.",
    "aiosqlite.",
    "sqlite3",
    "pymongo.",
    "motor.",
    "redis.",
    "httpx.",
    "requests.",
    "urllib3.",
    "botocore.",
    "boto3.",
    "grpc.",
)
_PLUMBING_TYPES: tuple[type, ...] = (
    io.IOBase,
    logging.Logger,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CoroutineType,
    types.GeneratorType,
    types.AsyncGeneratorType,
    types.ModuleType,
    type(threading.Lock()),
    threading.Thread,
    threading.Event,
)
_framework_cache: dict[type, bool] = {}


def _is_data_model(value: Any) -> bool:
    cls = type(value)
    return (
        callable(getattr(cls, "model_dump", None))  # pydantic v2 (also SQLModel)
        or (hasattr(cls, "__fields__") and callable(getattr(cls, "dict", None)))  # pydantic v1
        or hasattr(cls, "__attrs_attrs__")
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
    )


def is_framework_object(value: Any) -> bool:
    """A request, response, session, client, file, callable...: not part of a payload."""
    cls = type(value)
    known = _framework_cache.get(cls)
    if known is not None:
        return known
    if _is_data_model(value):
        found = False
    elif isinstance(value, (*_PLUMBING_TYPES, type)):
        found = True
    else:
        found = any(
            (getattr(k, "__module__", "") or "").startswith(FRAMEWORK_MODULES) for k in cls.__mro__
        )
    if len(_framework_cache) > 4096:
        _framework_cache.clear()
    _framework_cache[cls] = found
    return found


def _data_model(value: Any) -> Any:
    cls = type(value)
    if callable(getattr(cls, "model_dump", None)):
        return value.model_dump(mode="json")
    if hasattr(cls, "__fields__") and callable(getattr(cls, "dict", None)):
        return value.dict()
    if hasattr(cls, "__attrs_attrs__"):
        return {a.name: getattr(value, a.name) for a in cls.__attrs_attrs__}
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def jsonable(value: Any) -> Any:
    """The JSON form of one value the JSON encoder does not know (its ``default`` hook)."""
    if _is_data_model(value):
        return _data_model(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if is_framework_object(value):  # before Mapping: a Starlette Request is one
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    if callable(getattr(value, "tolist", None)):  # numpy / pandas
        return value.tolist()
    cls: Any = type(value)
    if cls.__str__ is not object.__str__ or cls.__repr__ is not object.__repr__:
        return str(value)
    return f"<{cls.__module__}.{cls.__qualname__}>"


try:  # orjson is optional: ~5x faster, and serialises dataclasses/enums/datetimes natively
    import orjson

    _OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def to_json(value: Any) -> str:
        """JSON text of ``value`` (a :class:`JSONText` is taken as it is)."""
        if type(value) is JSONText:
            return value
        return orjson.dumps(value, default=jsonable, option=_OPTIONS).decode()

except ImportError:  # pragma: no cover - exercised where orjson is absent

    def to_json(value: Any) -> str:
        """JSON text of ``value`` (a :class:`JSONText` is taken as it is)."""
        if type(value) is JSONText:
            return value
        return json.dumps(value, default=jsonable, separators=(",", ":"), ensure_ascii=False)


def response_output(result: Any) -> Any:
    """A handler's return value as the champion's output.

    A framework response object with a JSON body (``body`` bytes and a JSON
    ``media_type``, as Starlette/FastAPI responses have) is recorded as that
    body; anything else as its JSON form.
    """
    body = getattr(result, "body", None)
    media_type = getattr(result, "media_type", None)
    if isinstance(body, bytes) and isinstance(media_type, str) and "json" in media_type:
        try:
            return JSONText(body.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return result


@dataclasses.dataclass(frozen=True)
class CallShape:
    """A function's parameter names, read once, to name the arguments of each call cheaply."""

    positional: tuple[str, ...]
    var_positional: str | None
    skip_first: bool  # a method's self/cls


def call_shape(fn: Callable[..., Any]) -> CallShape | None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = tuple(p.name for p in params if p.kind in kinds)
    var = next((p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    return CallShape(positional, var, bool(positional) and positional[0] in ("self", "cls"))


def call_payload(shape: CallShape | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The input payload of a call: its arguments by name, framework objects left out.

    One argument left: that argument itself (a FastAPI endpoint
    ``classify(ticket: Ticket, request: Request)`` records the ticket);
    several: ``{parameter name: value}`` (extra positional arguments as
    ``<*name><i>``); ``self``/``cls`` are skipped.
    """
    if len(args) == 1 and not kwargs and not (shape is not None and shape.skip_first):
        only = args[0]  # the common case: one argument, no dict to build
        return {} if is_framework_object(only) else only
    values: dict[str, Any] = {}
    named = len(shape.positional) if shape is not None else 0
    for i, value in enumerate(args):
        if shape is not None and i == 0 and shape.skip_first:
            continue
        if i < named:
            name = shape.positional[i]  # type: ignore[union-attr]
        elif shape is not None and shape.var_positional is not None:
            name = f"{shape.var_positional}{i - named}"
        else:
            name = f"arg{i}"
        if not is_framework_object(value):
            values[name] = value
    for name, value in kwargs.items():
        if not is_framework_object(value):
            values[name] = value
    if len(values) == 1:
        return next(iter(values.values()))
    return values
